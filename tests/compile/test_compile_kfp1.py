"""kfp 1.8.22 in its own venv (scripts/setup-kfp1) compiles a v1-style pipeline to Argo Workflow YAML.

kfp-ci runs its compiler in the interpreter named by KFP_CI_PYTHON; the worker is a standalone script,
so nothing but kfp needs installing in that venv.
"""

from __future__ import annotations

import os
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
