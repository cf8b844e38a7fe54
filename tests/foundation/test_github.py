"""GitHub Actions workflow commands, outputs and summaries."""

from __future__ import annotations

from pathlib import Path

import pytest

from kfp_ci import github
from kfp_ci._secrets import clear, register


def test_annotation_escapes_properties_and_data(capsys: pytest.CaptureFixture[str]) -> None:
    line = github.annotation("error", "bad\nthing 100%", file="a,b.py", line=3, title="t: x", force=True)
    assert line == "::error file=a%2Cb.py,line=3,title=t%3A x::bad%0Athing 100%25"
    assert capsys.readouterr().out == line + "\n"


def test_nothing_is_printed_outside_github(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    github.annotation("warning", "w")
    with github.group("g"):
        pass
    assert capsys.readouterr().out == ""


def test_outputs_summary_and_masking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    out, summary = tmp_path / "out", tmp_path / "summary"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    clear()
    register("s3cr3t-cookie")
    assert capsys.readouterr().out == "::add-mask::s3cr3t-cookie\n"
    assert github.set_outputs({"run-id": "r1", "run-url": None, "note": "a\ns3cr3t-cookie"})
    text = out.read_text()
    assert text.startswith("run-id=r1\nrun-url=\nnote<<ghadelimiter_")
    assert "a\n***\n" in text and "s3cr3t-cookie" not in text
    assert github.append_summary("| a |\n")
    assert summary.read_text() == "| a |\n\n"
    with github.group("Pipeline x"):
        print("inside")
    assert capsys.readouterr().out == "::group::Pipeline x\ninside\n::endgroup::\n"
    clear()
