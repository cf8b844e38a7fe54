"""Mistakes kfp-ci deploy catches before talking to any server (exit 2, one line, nothing created)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from kfp_ci.cli import main

# An address nothing listens on: if deploy tried to connect, the error would be a connection error (exit 4).
DEAD = "http://127.0.0.1:9"


def invoke(root: Path, *args: str) -> tuple[int, str]:
    runner = CliRunner()
    result = runner.invoke(main, ["deploy", "--host", DEAD, *args], catch_exceptions=False,
                           env={"KFP_CI_CONFIG": "", "GITHUB_OUTPUT": "", "GITHUB_ACTIONS": ""})
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["needs-input.yaml", "--run"], "needs a value for required input(s) epochs"),
        (["needs-input.yaml", "--run", "--param", "epochs=ten"], "--param epochs='ten': expected an integer"),
        (["needs-input.yaml", "--run", "--param", "epochs=1", "--param", "lr=2"], "has no input 'lr'"),
        (["needs-input.yaml", "--param", "epochs=1"], "--param needs --run or a schedule"),
        (["needs-input.yaml", "--wait"], "--wait needs --run"),
        (["needs-input.yaml", "--schedule", "0 2 * *"], "has 4 fields"),
        (["needs-input.yaml", "--schedule", "@daily", "--every", "1h"], "exclusive"),
        (["needs-input.yaml", "--version-name", "{branch}"], "unknown field(s) {branch}"),
        (["missing.yaml"], "missing.yaml: no such file"),
        (["README.md"], "README.md is not a pipeline package: KFP takes a .yaml"),
    ],
)
def test_bad_input_is_one_line_exit_2_before_any_request(
    repo: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    root = repo("needs-input")
    monkeypatch.chdir(root)
    code, output = invoke(root, *args)
    assert code == 2, output
    assert message in output
    assert "Traceback" not in output
    assert len([line for line in output.splitlines() if line.startswith("kfp-ci: error:")]) == 1


def test_a_yaml_that_is_not_a_pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "x.yaml").write_text("just: a mapping\n")
    monkeypatch.chdir(tmp_path)
    code, output = invoke(tmp_path, "x.yaml")
    assert code == 2 and "x.yaml is not a KFP pipeline" in output
