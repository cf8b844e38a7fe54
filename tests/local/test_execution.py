"""Execution, termination, schedules and the command line, with real worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner

from kfp_ci.cli import main

from .test_api import V2, upload, upload_version


def _wait(url: str, run_id: str, states: tuple[str, ...], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, Any] = httpx.get(f"{url}{V2}/runs/{run_id}").json()
        if run.get("state") in states or time.monotonic() > deadline:
            return run
        time.sleep(0.1)


def _run(url: str, pipeline_id: str, **extra: Any) -> dict[str, Any]:
    body = {"display_name": "r", "pipeline_version_reference": {"pipeline_id": pipeline_id}, **extra}
    response = httpx.post(f"{url}{V2}/runs", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _group_alive(pgid: int) -> bool:
    """A live (not zombie) process is still in process group ``pgid``."""
    time.sleep(0.2)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                return True
    return False


def _worker_pgids(run_dir: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "kfp_ci.local._worker" in cmd and str(run_dir) in cmd:
                found.append(os.getpgid(int(entry.name)))
    return found


@pytest.mark.slow
def test_terminate_kills_the_worker_and_its_tasks(kfp_server: Callable[..., Any], pipelines: dict[str, Path]) -> None:
    srv = kfp_server(execute=True)
    p = upload(srv.url, pipelines["slow"], name="slow").json()
    run = _run(srv.url, p["pipeline_id"])
    running = _wait(srv.url, run["run_id"], ("RUNNING",))
    run_dir = srv.store.data_dir / "runs" / run["run_id"]
    deadline = time.monotonic() + 30
    while not (running.get("run_details") or {}).get("task_details") and time.monotonic() < deadline:
        time.sleep(0.1)
        running = httpx.get(f"{srv.url}{V2}/runs/{run['run_id']}").json()
    pgids = _worker_pgids(run_dir)
    assert pgids, "the worker process should be running"
    assert httpx.post(f"{srv.url}{V2}/runs/{run['run_id']}:terminate").status_code == 200
    done = _wait(srv.url, run["run_id"], ("CANCELED",), timeout=20)
    assert done["state"] == "CANCELED"
    assert [h["state"] for h in done["state_history"]][-2:] == ["CANCELING", "CANCELED"]
    assert not any(_group_alive(g) for g in pgids)  # worker and task subprocesses are gone


@pytest.mark.slow
def test_unrunnable_packages_fail_with_a_clear_error(kfp_server: Callable[..., Any], pipelines: dict[str, Path],
                                                     tmp_path: Path) -> None:
    srv = kfp_server(execute=True)
    container = upload(srv.url, pipelines["container"], name="container").json()
    argo = tmp_path / "argo.yaml"
    argo.write_text(yaml.safe_dump({"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                                    "metadata": {"generateName": "old-"}, "spec": {"entrypoint": "main"}}))
    v1 = upload(srv.url, argo, name="argo").json()
    failed_container = _wait(srv.url, _run(srv.url, container["pipeline_id"])["run_id"], ("FAILED", "SUCCEEDED"))
    failed_argo = _wait(srv.url, _run(srv.url, v1["pipeline_id"])["run_id"], ("FAILED", "SUCCEEDED"))
    assert failed_container["state"] == "FAILED" and "Container Component" in failed_container["error"]["message"]
    assert failed_argo["state"] == "FAILED" and "Argo" in failed_argo["error"]["message"]
    assert httpx.get(f"{srv.url}{V2}/healthz").status_code == 200  # nothing else harmed


def test_always_latest_recurring_run_uses_the_newest_version(kfp_server: Callable[..., Any],
                                                             pipelines: dict[str, Path]) -> None:
    srv = kfp_server(execute=False, run_delay=0.0)
    p = upload(srv.url, pipelines["add-square"], name="p").json()
    rec = httpx.post(f"{srv.url}{V2}/recurringruns", json={
        "display_name": "latest", "pipeline_version_reference": {"pipeline_id": p["pipeline_id"]},
        "trigger": {"periodic_schedule": {"interval_second": "1"}}, "mode": "ENABLE", "max_concurrency": "5",
        "no_catchup": True}).json()
    newest = upload_version(srv.url, pipelines["add-square"], pipelineid=p["pipeline_id"], name="v2").json()
    deadline = time.monotonic() + 10
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        runs = [r for r in httpx.get(f"{srv.url}{V2}/runs").json().get("runs", [])
                if r.get("recurring_run_id") == rec["recurring_run_id"]]
        if runs:
            break
        time.sleep(0.2)
    assert runs, "the recurring run did not fire"
    assert {r["pipeline_version_reference"]["pipeline_version_id"] for r in runs} == {newest["pipeline_version_id"]}


def test_serve_help_documents_every_flag() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    for flag in ["--host", "--port", "--data-dir", "--compat", "--multi-user", "--auth", "--dex-shape", "--kubeflow",
                 "--dex-url-shape", "--connectors", "--users-file", "--tokens-file", "--session-ttl", "--no-execute",
                 "--run-delay", "--faults"]:
        assert flag in result.output


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_kfp_ci_serve_logs_requests_and_stops_cleanly(tmp_path: Path, pipelines: dict[str, Path], stop: int) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "kfp_ci", "serve", "--port", "0", "--data-dir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        url = next(word for word in line.split() if word.startswith("http://127.0.0.1:"))
        p = upload(url, pipelines["slow"], name="slow").json()
        run = _run(url, p["pipeline_id"])
        _wait(url, run["run_id"], ("RUNNING",))
        deadline = time.monotonic() + 30
        pgids: list[int] = []
        while not pgids and time.monotonic() < deadline:
            pgids = _worker_pgids(tmp_path / "runs" / run["run_id"])
            time.sleep(0.1)
        assert pgids
        proc.send_signal(stop)
        proc.wait(timeout=20)
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and err.rstrip().endswith("kfp-ci serve: stopped")
    log_lines = [x for x in err.splitlines() if "/apis/v2beta1/runs" in x]
    assert any(" POST /apis/v2beta1/runs 200 " in x for x in log_lines), err
    assert not any(_group_alive(g) for g in pgids)  # no orphan worker


@pytest.mark.slow
def test_executed_run_keeps_artifacts_and_outputs(kfp_server: Callable[..., Any], pipelines: dict[str, Path]) -> None:
    srv = kfp_server(execute=True)
    p = upload(srv.url, pipelines["metrics"], name="metrics").json()
    run = _wait(srv.url, _run(srv.url, p["pipeline_id"], runtime_config={"parameters": {"r2": 0.75}})["run_id"],
                ("SUCCEEDED", "FAILED"))
    assert run["state"] == "SUCCEEDED", run.get("error")
    artifacts = srv.store.run_artifacts(run["run_id"])
    assert [(a["task"], a["name"], a["type"], a["metadata"]) for a in artifacts] == [
        ("evaluate", "scores", "system.Metrics", {"r2": 0.75})]
    assert artifacts[0]["parameters"] == {"Output": 1.5} and artifacts[0]["uri"]
    assert (srv.store.data_dir / "runs" / run["run_id"] / "log.txt").stat().st_size > 0


@pytest.mark.slow
@pytest.mark.parametrize("api", ["v2", "v1"])
def test_a_failed_run_is_retried_under_the_same_id(kfp_server: Callable[..., Any], pipelines: dict[str, Path],
                                                   tmp_path: Path, api: str) -> None:
    srv = kfp_server(execute=True)
    p = upload(srv.url, pipelines["fails-once"], name="fails-once").json()
    marker = tmp_path / "marker"
    run_id = _run(srv.url, p["pipeline_id"], runtime_config={"parameters": {"marker": str(marker)}})["run_id"]
    first = _wait(srv.url, run_id, ("SUCCEEDED", "FAILED"))
    assert first["state"] == "FAILED" and "RuntimeError: transient failure" in first["error"]["message"]
    retry = f"{srv.url}{V2}/runs/{run_id}:retry" if api == "v2" else f"{srv.url}/apis/v1beta1/runs/{run_id}/retry"
    assert httpx.post(retry).status_code == 200
    again = _wait(srv.url, run_id, ("SUCCEEDED", "FAILED"))
    assert again["state"] == "SUCCEEDED", again.get("error")
    assert [h["state"] for h in again["state_history"]] == ["PENDING", "RUNNING", "FAILED", "PENDING", "RUNNING",
                                                             "SUCCEEDED"]
    refused = httpx.post(retry)  # only a failed run can be retried, as KFP's "Workflow must be Failed/Error"
    assert refused.status_code == 400 and "must be Failed" in refused.json()["message"]


@pytest.mark.slow
def test_pipeline_named_like_one_of_its_components_runs(kfp_server: Callable[..., Any],
                                                         pipelines: dict[str, Path]) -> None:
    srv = kfp_server(execute=True)
    p = upload(srv.url, pipelines["square"], name="square").json()
    run = _wait(srv.url, _run(srv.url, p["pipeline_id"], runtime_config={"parameters": {"value": 4.0}})["run_id"],
                ("SUCCEEDED", "FAILED"))
    assert run["state"] == "SUCCEEDED", run.get("error")
    assert [t["display_name"] for t in run["run_details"]["task_details"]] == ["square"]
    outputs = srv.store.run_artifacts(run["run_id"])
    assert outputs[0]["parameters"] == {"Output": 16.0}


def test_serve_on_a_busy_port_is_one_clear_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = CliRunner().invoke(main, ["serve", "--port", str(port), "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    lines = [x for x in result.output.splitlines() if x.strip()]
    assert len(lines) == 1 and f"cannot listen on 127.0.0.1:{port}" in lines[0] and "Traceback" not in result.output


def test_serve_rejects_a_malformed_users_file(tmp_path: Path) -> None:
    users = tmp_path / "users.txt"
    users.write_text("alice@example.com:secret-pass\nno-colon-here\n")
    result = CliRunner().invoke(main, ["serve", "--users-file", str(users), "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "users.txt:2: expected email:password" in result.output
    assert "secret-pass" not in result.output


def test_importing_the_package_for_options_stays_light() -> None:
    code = ("import sys, kfp_ci.local; from kfp_ci.local import ServerOptions; ServerOptions(); "
            "print(sorted(m for m in ('starlette', 'uvicorn', 'kfp', 'croniter', 'yaml') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
