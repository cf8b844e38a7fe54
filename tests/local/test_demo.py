"""kfp-ci demo: the whole CI flow on the examples against an embedded server with Dex login."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_runs_the_ci_flow_and_says_where_to_look(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KFP_CI_", "GITHUB_"))}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    proc = subprocess.run([sys.executable, "-m", "kfp_ci", "demo", "--data-dir", str(tmp_path / "demo")],
                          cwd=ROOT, capture_output=True, text=True, env=env, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    steps = re.findall(r"^\$ kfp-ci (?:--config \S+ )?(\w+)", proc.stdout, flags=re.M)
    assert steps == ["compile", "login", "deploy", "deploy", "schedule", "status"]
    assert "SUCCEEDED" in proc.stdout and "(unchanged" in proc.stdout
    assert re.search(r"Look at .*: http://127\.0\.0\.1:\d+/$", proc.stdout, flags=re.M)
    assert "12341234" not in out  # the password is never printed
