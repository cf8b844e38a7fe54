"""Acceptance: the real kfp 1.8 client (own venv, ``scripts/setup-kfp1``) does the v1beta1 flow."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import Wire

ROOT = Path(__file__).resolve().parents[2]


def kfp1_python() -> Path:
    venv = Path(os.environ.get("KFP_CI_KFP1_VENV") or ROOT / ".venv-kfp1")  # as scripts/setup-kfp1 makes it
    python = venv / "bin" / "python"
    if not python.exists():
        pytest.skip(f"the kfp 1.8 venv is missing ({python}): run scripts/setup-kfp1")
    return python


@pytest.mark.kfp1
@pytest.mark.slow
@pytest.mark.parametrize("compat", ["1.8", "2.17"])
def test_kfp1_client_v1beta1_flow(kfp_server: Callable[..., Any], tmp_path: Path, wire: Wire, compat: str) -> None:
    python = kfp1_python()
    srv = kfp_server(compat=compat, execute=False, run_delay=0.0)
    done = subprocess.run([str(python), str(Path(__file__).parent / "kfp1" / "client_flow.py"), srv.url,
                           str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["healthz_multi_user"] is False
    assert out["default_version"] == "v1-add"
    assert out["version_names"] == ["v1-add", "v2"]
    assert out["found_id"] == out["pipeline_id"]
    assert out["same_experiment"] is True
    assert out["run_status"] == "Succeeded"
    assert out["run_params"] == {"a": "3", "b": "4"}
    assert (out["job_enabled"], out["job_enabled_after_disable"]) == (True, False)
    assert out["jobs"] == ["v1-nightly"] and out["jobs_after_delete"] is None
    assert out["runs"] == ["v1-run"]
    assert wire.validate("v1beta1-1.8.5" if compat == "1.8" else "v1beta1-2.17.0") >= 15
