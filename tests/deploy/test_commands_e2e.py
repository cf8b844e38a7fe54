"""kfp-ci run, schedule, wait and status against the embedded server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .gitrepo import new_revision
from .test_deploy_e2e import kfp_ci, recurring, sdk, short_sha


def test_run_wait_status_and_schedule_commands(kfp_server: Callable[..., Any], repo: Callable[..., Path],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    srv = kfp_server(execute=False, run_delay=0.3)
    root = repo("add-square", "needs-input")
    monkeypatch.chdir(root)
    first = short_sha(root)
    assert kfp_ci("deploy", "add-square.yaml", "needs-input.yaml", "--host", srv.url)[0] == 0
    new_revision(root, "v2")
    assert kfp_ci("deploy", "add-square.yaml", "--host", srv.url)[0] == 0

    # run: the latest version by default, a named one on request, typed parameters.
    code, out, data = kfp_ci("run", "add-square", "--host", srv.url, "--param", "b=5", "--wait", "-o", "json")
    assert code == 0, out
    assert data["version_name"] == short_sha(root) and data["run_state"] == "SUCCEEDED"
    assert sdk(srv.url).get_run(data["run_id"]).runtime_config.parameters == {"b": 5.0}
    code, out, data = kfp_ci("run", "add-square", "--host", srv.url, "--version", first, "-o", "json")
    assert code == 0 and data["version_name"] == first
    run_id = data["run_id"]

    # wait and status on that run.
    code, out, _ = kfp_ci("wait", run_id, "--host", srv.url)
    assert code == 0 and "SUCCEEDED" in out
    code, out, _ = kfp_ci("status", run_id, "--host", srv.url)
    assert code == 0 and run_id in out and f"/#/runs/details/{run_id}" in out
    code, out, _ = kfp_ci("status", "--host", srv.url, "--pipeline", "add-square")
    assert code == 0 and out.splitlines()[0].split()[:2] == ["RUN", "ID"] and len(out.splitlines()) == 3

    # Mistakes: a missing required input, an unknown version, an unknown pipeline, an unknown run.
    code, out, _ = kfp_ci("run", "needs-input", "--host", srv.url)
    assert code == 2 and "needs a value for required input(s) epochs" in out
    code, out, _ = kfp_ci("run", "add-square", "--host", srv.url, "--version", "nope")
    assert code == 2 and "has no version 'nope'" in out
    code, out, _ = kfp_ci("run", "nope", "--host", srv.url)
    assert code == 2 and "no pipeline named 'nope'" in out
    code, out, _ = kfp_ci("wait", "00000000-0000-0000-0000-000000000000", "--host", srv.url)
    assert code == 2 and "no run" in out

    # schedule: only the recurring-run part, idempotent, dry-run changes nothing.
    code, out, data = kfp_ci("schedule", "add-square", "--host", srv.url, "--schedule", "30 4 * * 1", "-o", "json")
    assert code == 0, out
    assert data["recurring_action"] == "created" and len(data["next_fire"]) == 3
    assert data["next_fire"][0].endswith("04:30:00")
    code, out, data = kfp_ci("schedule", "add-square", "--host", srv.url, "--schedule", "30 4 * * 1", "-o", "json")
    assert data["recurring_action"] == "unchanged"
    code, out, data = kfp_ci("schedule", "add-square", "--host", srv.url, "--every", "2h", "--dry-run", "-o", "json")
    assert code == 0 and data["recurring_action"] == "would swap"
    (only,) = recurring(srv.url)
    assert only.trigger.cron_schedule.cron == "0 30 4 * * 1"


def test_failed_run_exit_code_through_wait(kfp_server: Callable[..., Any], repo: Callable[..., Path],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    srv = kfp_server(execute=False, run_delay=30)
    monkeypatch.chdir(repo("add-square"))
    code, out, data = kfp_ci("deploy", "add-square.yaml", "--host", srv.url, "--run", "-o", "json")
    assert code == 0, out
    sdk(srv.url).terminate_run(data["run_id"])
    code, out, _ = kfp_ci("wait", data["run_id"], "--host", srv.url, "--timeout", "20")
    assert code == 1 and "ended CANCELED" in out


def test_tutorial_script_on_the_library(kfp_server: Callable[..., Any], repo: Callable[..., Path]) -> None:
    """scripts/run_pipeline.py: log in (from the environment), upload a version, run it, wait."""
    import os
    import subprocess
    import sys

    srv = kfp_server(execute=False, run_delay=0.3)
    root = repo("add-square")
    script = Path(__file__).resolve().parents[2] / "scripts" / "run_pipeline.py"
    assert len(script.read_text().splitlines()) < 40
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KFP_CI_", "GITHUB_"))}
    env.update(KFP_CI_HOST=srv.url, KFP_CI_AUTH="none", KFP_CI_CONFIG="")
    cmd = [sys.executable, str(script), "add-square.yaml", "a=4"]
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"version {short_sha(root)} (uploaded)" in proc.stdout and "SUCCEEDED" in proc.stdout
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "(unchanged)" in proc.stdout
    run = sdk(srv.url).list_runs(sort_by="created_at desc").runs[0]
    assert run.runtime_config.parameters == {"a": 4.0}
    bad = subprocess.run([*cmd[:3], "nope=1"], cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "has no input 'nope'" in bad.stderr and "Traceback" not in bad.stderr
