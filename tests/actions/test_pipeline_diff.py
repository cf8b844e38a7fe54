"""The PR summary: what changed between two compiled pipelines, and the summary script over git."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from act_helpers import compile_pipeline, git
from test_act_workflows import CHANGED_SOURCE

from kfp_ci.deploy._pipeline_diff import diff_specs, load_spec, summary_markdown

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def changed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("changed")
    (base / "hello.py").write_text(CHANGED_SOURCE, encoding="utf-8")
    compile_pipeline(base / "hello.py", base / "hello-ci.yaml")
    return base / "hello-ci.yaml"


def test_diff_of_real_compiled_pipelines(compiled_hello: Path, changed: Path) -> None:
    old = load_spec(compiled_hello.read_text(encoding="utf-8"))
    new = load_spec(changed.read_text(encoding="utf-8"))
    diff = diff_specs(old, new)
    assert diff.added_steps == ["publish"]
    assert diff.removed_steps == []
    assert diff.changed_steps == {"report": ["image python:3.11-slim -> python:3.12-slim"]}
    assert diff.added_params == ["channel"]
    assert not diff.changed_params and not diff.removed_params
    back = diff_specs(new, old)
    assert back.removed_steps == ["publish"] and back.removed_params == ["channel"]
    assert diff_specs(old, old).empty


def test_changed_default_and_code_are_reported(compiled_hello: Path) -> None:
    old = load_spec(compiled_hello.read_text(encoding="utf-8"))
    text = compiled_hello.read_text(encoding="utf-8").replace("defaultValue: 3.0", "defaultValue: 5.0")
    text = text.replace("return rows * 2", "return rows * 3")
    assert text != compiled_hello.read_text(encoding="utf-8")
    diff = diff_specs(old, load_spec(text))
    assert diff.changed_params == {"rows": "NUMBER_INTEGER = 3 -> NUMBER_INTEGER = 5"}
    assert diff.changed_steps == {"make-rows": ["code"]}


def test_summary_of_a_new_and_a_removed_pipeline(compiled_hello: Path) -> None:
    spec = load_spec(compiled_hello.read_text(encoding="utf-8"))
    new = summary_markdown("hello-ci", "compiled/hello-ci.yaml", None, spec, base="main")
    assert "New pipeline (not on `main`)" in new
    assert "| + | step | `make-rows` | added |" in new and "graph TD" in new
    gone = summary_markdown("hello-ci", "compiled/hello-ci.yaml", spec, None, base="main")
    assert "Removed" in gone and "graph" not in gone


def test_pipeline_summary_script_compares_with_the_base_branch(consumer: Path, changed: Path) -> None:
    git(consumer, "checkout", "-q", "-b", "feature")
    (consumer / "compiled" / "hello-ci.yaml").write_bytes(changed.read_bytes())
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "pipeline-summary"), "--base", "main"],
                          cwd=consumer, capture_output=True, text=True, check=False,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(consumer), "PYTHONPATH": str(ROOT / "ci")})
    assert done.returncode == 0, done.stderr
    assert "### Pipeline `hello-ci` (`compiled/hello-ci.yaml`, `sha256:" in done.stdout
    assert "| + | step | `publish` | added |" in done.stdout
    assert "| base `main` | **new version** |" in done.stdout
