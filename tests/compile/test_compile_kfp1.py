"""kfp 1.8.22 in its own venv (scripts/setup-kfp1) compiles a v1-style pipeline to Argo Workflow YAML.

kfp-ci runs its compiler in the interpreter named by KFP_CI_PYTHON; the worker is a standalone script,
so nothing but kfp needs installing in that venv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from compile_helpers import REPO, as_json, copy_tree, kfp_ci

pytestmark = [pytest.mark.kfp1, pytest.mark.slow]


def _kfp1_python() -> Path:
    venv = Path(os.environ.get("KFP_CI_KFP1_VENV", REPO / ".venv-kfp1"))
    python = venv / "bin" / "python"
    assert python.exists(), f"{venv} is missing: run scripts/setup-kfp1 (scripts/test does)"
    return python


def test_v1_style_pipeline_compiles_to_argo_with_kfp_1_8(tmp_path: Path) -> None:
    python = _kfp1_python()
    copy_tree("broken", tmp_path)
    env = {"KFP_CI_PYTHON": str(python)}
    result = kfp_ci(["compile", "broken/v1_style.py", "--out-dir", "out"], tmp_path, env=env)
    assert result.exit_code == 0, result.output
    assert "ok      v1-style  broken/v1_style.py:v1_style -> out/v1-style.yaml" in result.stdout
    assert "kfp 1.8.22" in result.stdout
    workflow = yaml.safe_load((tmp_path / "out" / "v1-style.yaml").read_text())
    assert workflow["apiVersion"] == "argoproj.io/v1alpha1" and workflow["kind"] == "Workflow"
    assert workflow["metadata"]["generateName"] == "v1-style-"
    templates = {t["name"] for t in workflow["spec"]["templates"]}
    assert {"add", "add-2", "v1-style"} <= templates
    params = {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]}
    assert params == {"a": "1", "b": "2"}

    again = kfp_ci(["compile", "broken/v1_style.py", "--out-dir", "out", "--format", "json"], tmp_path, env=env)
    (entry,) = as_json(again)["results"]
    assert entry["cached"] is True and entry["sdk_version"] == "1.8.22"


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin", "HOME": str(cwd)})


def test_kfp_1_8_output_committed_by_dsl_compile_is_fresh_20_times_in_a_fresh_clone(tmp_path: Path) -> None:
    """kfp 1.8 stamps the compile time into every file; --check ignores exactly that stamp."""
    python = _kfp1_python()
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(REPO / "tests" / "compile" / "broken" / "v1_style.py", repo / "v1_style.py")
    subprocess.run([str(python.with_name("dsl-compile")), "--py", "v1_style.py", "--output", "v1-style.yaml"],
                   cwd=repo, check=True, capture_output=True)
    committed = (repo / "v1-style.yaml").read_text()
    assert "pipelines.kubeflow.org/pipeline_compilation_time" in committed
    (repo / ".gitignore").write_text(".kfp-ci/\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "a kfp 1.8 pipeline and its Argo YAML")
    clone = tmp_path / "clone"
    _git(tmp_path, "clone", "-q", str(repo), str(clone))
    env = {"KFP_CI_PYTHON": str(python)}
    for run in range(20):
        result = kfp_ci(["compile", "--check", "v1_style.py"], clone, env=env)
        assert result.exit_code == 0, f"run {run + 1}: {result.output}"
        assert "up to date" in result.stdout and "kfp 1.8.22" in result.stdout
    assert not (clone / ".kfp-ci").exists()

    # everything but the clock stamp still counts
    compiled = clone / "v1-style.yaml"
    compiled.write_text(committed.replace("{name: b, value: '2'}", "{name: b, value: '3'}"))
    result = kfp_ci(["compile", "--check", "v1_style.py"], clone, env=env)
    assert result.exit_code == 1 and "v1-style.yaml is stale" in result.stdout
    assert "pipeline_compilation_time" not in (result.stdout.split("v1-style.yaml (fresh compile)")[1])

    # and writing does not rewrite a file whose only difference is the stamp (no churn in git)
    compiled.write_text(committed)
    result = kfp_ci(["compile", "v1_style.py"], clone, env=env)
    assert result.exit_code == 0 and "[unchanged" in result.stdout
    assert compiled.read_text() == committed


def test_kfp_1_8_version_stamp_is_named(tmp_path: Path) -> None:
    python = _kfp1_python()
    shutil.copy(REPO / "tests" / "compile" / "broken" / "v1_style.py", tmp_path / "v1_style.py")
    env = {"KFP_CI_PYTHON": str(python)}
    assert kfp_ci(["compile", "v1_style.py"], tmp_path, env=env).exit_code == 0
    compiled = tmp_path / "v1-style.yaml"
    compiled.write_text(compiled.read_text().replace("kfp_sdk_version: 1.8.22", "kfp_sdk_version: 1.8.19"))
    result = kfp_ci(["compile", "--check", "v1_style.py", "--format", "json"], tmp_path, env=env)
    (entry,) = as_json(result)["results"]
    assert result.exit_code == 1 and entry["status"] == "sdk-mismatch"
    assert "compiled with kfp 1.8.19, this is kfp 1.8.22" in entry["error"]["message"]
    assert kfp_ci(["compile", "--check", "v1_style.py", "--ignore-sdk-version"], tmp_path, env=env).exit_code == 0
