"""KFP v1 runs execute: kfp 1.8 pipelines (compiled to Argo in the kfp 1.8 venv) run on ``--compat 1.8`` through
the kfp 1.8 client, over loopback, with real task processes on the host."""

from __future__ import annotations

import json
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

from .conftest import Wire
from .test_api import V1
from .test_kfp1_client import kfp1_python

pytestmark = [pytest.mark.kfp1, pytest.mark.slow]
FLOW = Path(__file__).parent / "kfp1" / "argo_flow.py"


def _flow(srv: Any, tmp_path: Path, *names: str) -> dict[str, Any]:
    url = srv if isinstance(srv, str) else srv.url
    done = subprocess.run([str(kfp1_python()), str(FLOW), url, str(tmp_path), *names],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _tasks(srv: Any, run_id: str) -> dict[str, dict[str, Any]]:
    run = srv.store.get("run", run_id)
    return {t["node_name"].split(".", 1)[-1]: t for t in run["tasks"]}


def test_a_kfp1_pipeline_with_a_condition_a_loop_and_an_artifact_succeeds(kfp_server: Callable[..., Any],
                                                                          tmp_path: Path, wire: Wire) -> None:
    srv = kfp_server(compat="1.8", execute=True)
    both = _flow(srv, tmp_path, "cond-loop", "fan-out", "data-passing")
    passing = both["data-passing"]
    assert passing["status"] == "Succeeded", passing
    passed = {}
    for t in _tasks(srv, passing["run_id"]).values():
        for a in t["argo"]["outputs"].get("artifacts", []):
            passed.setdefault(t["display_name"], []).append(Path(a["path"]).read_text()
                                                            if Path(a["path"]).is_file() else "<folder>")
    assert passed["count-files"] == ["4"]  # a folder artifact, passed as a folder
    assert sorted(passed["pair"]) == [f"{o}/{i}" for o in "xyz" for i in ("i1", "i2")]  # the run's list parameter
    assert passed["copy"] == ["pipeline parameter as a file"]  # a YAML component given a parameter as a file
    fan_out = both["fan-out"]
    assert fan_out["status"] == "Succeeded", fan_out
    reports = sorted(Path(a["path"]).read_text() for t in _tasks(srv, fan_out["run_id"]).values()
                     if t["display_name"] == "report" for a in t["argo"]["outputs"]["artifacts"])
    assert reports == ["shard-0=0", "shard-1=1", "shard-2=4"]  # a loop over a task's output list (withParam)
    out = both["cond-loop"]
    assert out["status"] == "Succeeded", out
    tasks = _tasks(srv, out["run_id"])
    by_display: dict[str, list[dict[str, Any]]] = {}
    for t in tasks.values():
        by_display.setdefault(t["display_name"], []).append(t)
    produce = by_display["produce"][0]
    assert (produce["outputs"]["produce-size"], produce["outputs"]["produce-total"]) == ("big", "30")
    assert produce["arguments"] == {"n": "3"}
    # the loop over static items ran once per item, each reading the artifact produced upstream
    loop = [t for t in tasks.values() if t["type"] == "TaskGroup"]
    assert len(loop) == 1 and loop[0]["phase"] == "Succeeded" and len(loop[0]["children"]) == 3
    consumes = by_display["consume"]
    assert sorted(c["phase"] for c in consumes) == ["Succeeded"] * 3
    outputs = [Path(a["path"]).read_text() for c in consumes for a in c["argo"]["outputs"]["artifacts"]
               if a["name"] == "consume-Output"]
    assert sorted(outputs) == ["a:3", "b:3", "c:3"]
    metrics = {k: v for a in srv.store.run_artifacts(out["run_id"]) if a["type"] == "system.Metrics"
               for k, v in a["metadata"].items()}
    assert metrics == {"rows-a": 3, "rows-b": 3, "rows-c": 3}
    # ... and KFP 1.x's run.metrics, which `kfp-ci gate` reads on v1
    consume_ids = {c["node_id"] for c in consumes}
    assert sorted((m["name"], m["number_value"]) for m in out["metrics"]) == [("rows-a", 3), ("rows-b", 3),
                                                                             ("rows-c", 3)]
    assert {m["node_id"] for m in out["metrics"]} == consume_ids
    # the false condition is Skipped, its task never ran
    skipped = [t for t in tasks.values() if t["phase"] == "Skipped"]
    assert len(skipped) == 1 and "evaluated false" in skipped[0]["message"] and "explode" not in by_display
    # a ContainerOp whose command runs on the host, given an output parameter: its file output is an artifact
    count = by_display["count-rows"][0]
    assert count["phase"] == "Succeeded"
    assert [Path(a["path"]).read_text() for a in count["argo"]["outputs"]["artifacts"]] == ["3\n"]
    # the exit handler ran last, with the workflow's status
    handler = [t for t in tasks.values() if t["node_name"].endswith(".onExit")]
    assert len(handler) == 1 and handler[0]["phase"] == "Succeeded"
    assert "pipeline finished: Succeeded" in Path(handler[0]["log"]).read_text()
    assert all(t["state"] in ("SUCCEEDED", "SKIPPED") for t in tasks.values())
    # the Argo status the v1 API shows (what kfp 1.8's Client and UI read) is the executed workflow's own nodes
    assert set(out["nodes"]) == {t["node_id"] for t in tasks.values()}
    by_type: dict[str, int] = {}
    for node in out["nodes"].values():
        by_type[node["type"]] = by_type.get(node["type"], 0) + 1
    assert by_type["TaskGroup"] == 1 and by_type["Skipped"] == 1 and by_type["Pod"] >= 5, by_type
    root = next(n for n in out["nodes"].values() if n["type"] == "DAG" and "boundaryID" not in n)
    assert root["phase"] == "Succeeded" and root["children"]
    assert wire.validate("v1beta1-1.8.5") >= 10  # every answer (run details with their tasks too) is KFP 1.8's shape


@pytest.mark.parametrize("compat", ["1.8", "2.17"])
def test_a_kfp1_pipeline_built_to_fail_ends_failed_with_its_exception(kfp_server: Callable[..., Any],
                                                                      tmp_path: Path, wire: Wire, compat: str) -> None:
    srv = kfp_server(compat=compat, execute=True)
    out = _flow(srv, tmp_path, "fails")["fails"]
    assert out["status"] == "Failed", out
    assert "ValueError: the model diverged: loss is NaN" in out["error"]
    tasks = _tasks(srv, out["run_id"])
    explode = [t for t in tasks.values() if t["display_name"] == "explode"]
    assert explode[0]["state"] == "FAILED" and "ValueError: the model diverged: loss is NaN" in explode[0]["error"]
    assert "Traceback" not in explode[0]["error"] and str(srv.store.data_dir) not in explode[0]["error"]
    # the task after the failed one never ran (Argo stops scheduling after a failure)
    assert "produce-2" not in {t["display_name"] for t in tasks.values()}
    assert [t["phase"] for t in tasks.values() if t["display_name"] == "produce"] == ["Succeeded"]
    # the exit handler still ran, and saw the failure
    handler = [t for t in tasks.values() if t["node_name"].endswith(".onExit")]
    assert handler[0]["phase"] == "Succeeded"
    assert "pipeline finished: Failed (loss is NaN)" in Path(handler[0]["log"]).read_text()  # a pipeline parameter
    # the run's page draws the Argo DAG with the failed step, its error and its own log
    from bs4 import BeautifulSoup

    page = BeautifulSoup(httpx.get(f"{srv.url}/runs/{out['run_id']}").text, "html.parser")
    nodes = {g["data-task"].rsplit("/", 1)[-1]: g["data-state"] for g in page.select("svg#dag g.node")}
    assert nodes["explode"] == "FAILED" and nodes["produce"] == "SUCCEEDED", nodes
    row = next(tr for tr in page.select("table#tasks tr")
               if tr.find("td") and tr.find("td").get_text().endswith("explode"))
    assert "ValueError: the model diverged: loss is NaN" in row.get_text()
    exit_row = next(tr for tr in page.select("table#tasks tr") if "pipeline finished: Failed" in tr.get_text())
    assert exit_row.find("pre") is not None  # the exit handler's log, read from its node's log file
    if compat == "2.17":  # a KFP 2.x backend runs v1 pipelines too; its v2 API shows the Argo nodes as tasks
        v2 = httpx.get(f"{srv.url}/apis/v2beta1/runs/{out['run_id']}").json()
        assert v2["state"] == "FAILED" and "ValueError: the model diverged" in v2["error"]["message"]
        states = {t["display_name"]: t["state"] for t in v2["run_details"]["task_details"]}
        assert (states["explode"], states["produce"]) == ("FAILED", "SUCCEEDED")
        assert wire.validate("v2beta1-2.17.0", "v1beta1-2.17.0") >= 8
    else:
        assert wire.validate("v1beta1-1.8.5") >= 8


def test_kfp_ci_serve_compat_1_8_runs_kfp1_pipelines(tmp_path: Path) -> None:
    """The Must-show, end to end: `kfp-ci serve --compat 1.8` in its own process, the kfp 1.8 client as the peer."""
    kfp1_python()
    proc = subprocess.Popen([sys.executable, "-m", "kfp_ci", "serve", "--compat", "1.8", "--port", "0",
                             "--data-dir", str(tmp_path / "data")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        url = next(word for word in line.split() if word.startswith("http://127.0.0.1:"))
        out = _flow(url, tmp_path, "cond-loop", "fails")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert out["cond-loop"]["status"] == "Succeeded", out["cond-loop"]
    assert out["fails"]["status"] == "Failed"
    assert out["fails"]["error"].startswith("task explode failed: ValueError: the model diverged: loss is NaN")
    assert proc.returncode == 0


def test_what_the_host_cannot_run_fails_its_task_with_one_clear_message(kfp_server: Callable[..., Any],
                                                                        tmp_path: Path) -> None:
    srv = kfp_server(compat="1.8", execute=True)
    out = _flow(srv, tmp_path, "unrunnable")["unrunnable"]
    assert out["status"] == "Failed", out
    errors = {t["display_name"]: t["error"] for t in _tasks(srv, out["run_id"]).values() if t["type"] == "Pod"}
    assert "mounts volumes (/data)" in errors["mounts"]
    assert "runs the entrypoint of image my-registry/trainer:1" in errors["entrypoint"]
    assert "'gsutil-not-on-this-host' is not on this host: it needs the image google/cloud-sdk" in errors["image-tool"]
    assert "needs nvidia.com/gpu" in errors["produce"]
    assert "has sidecars (cache)" in errors["with-sidecar"]
    assert "package kfp-ci-no-such-package is not installed where kfp-ci serve runs" in errors["goodbye"]
    assert all(e.startswith("cannot run locally: ") and "\n" not in e for e in errors.values()), errors


def _compile(tmp_path: Path, *names: str) -> dict[str, str]:
    done = subprocess.run([str(kfp1_python()), str(FLOW), "compile", str(tmp_path), *names],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return {name: json.dumps(yaml.safe_load((tmp_path / f"{name}.yaml").read_text())) for name in names}


def _start(url: str, manifest: str, name: str) -> str:
    body = {"name": name, "pipeline_spec": {"workflow_manifest": manifest}}
    response = httpx.post(f"{url}{V1}/runs", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["run"]["id"])


def _wait(url: str, run_id: str, states: tuple[str, ...], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, Any] = httpx.get(f"{url}{V1}/runs/{run_id}").json()["run"]
        if run.get("status") in states or time.monotonic() > deadline:
            return run
        time.sleep(0.1)


def _alive(marker: str) -> list[int]:
    """Processes whose command line mentions ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if marker in cmd and state not in ("Z", "X"):
                found.append(int(entry.name))
    return found


def test_terminate_and_retry_a_kfp1_run(kfp_server: Callable[..., Any], tmp_path: Path) -> None:
    srv = kfp_server(compat="1.8", execute=True)
    manifests = _compile(tmp_path, "sleepy", "fails")
    run_id = _start(srv.url, manifests["sleepy"], "nap")
    deadline = time.monotonic() + 30
    task_dir = srv.store.data_dir / "runs" / run_id / "tasks"
    while not _alive(str(task_dir)) and time.monotonic() < deadline:  # the sleeping task's program runs
        time.sleep(0.1)
    assert _alive(str(task_dir)), "the task process should be running"
    assert httpx.post(f"{srv.url}{V1}/runs/{run_id}/terminate").status_code == 200
    assert _wait(srv.url, run_id, ("Failed", "Succeeded"))["status"] == "Failed"  # KFP 1.x shows CANCELED so
    record = srv.store.get("run", run_id)
    assert record["state"] == "CANCELED"
    nap = [t for t in record["tasks"] if t["display_name"] == "nap"]
    assert (nap[0]["state"], nap[0]["phase"]) == ("CANCELED", "Failed")
    time.sleep(0.3)
    assert not _alive(str(task_dir)), "terminate kills the task processes too"
    # retry: a failed v1 run runs again under the same id, and fails again the same way
    failed_id = _start(srv.url, manifests["fails"], "fails")
    first = _wait(srv.url, failed_id, ("Failed", "Succeeded"))
    assert first["status"] == "Failed" and "ValueError: the model diverged: loss is NaN" in first["error"]
    assert httpx.post(f"{srv.url}{V1}/runs/{failed_id}/retry").status_code == 200
    again = _wait(srv.url, failed_id, ("Failed", "Succeeded"))
    assert again["status"] == "Failed" and "ValueError: the model diverged: loss is NaN" in again["error"]


@pytest.mark.parametrize("compat", ["1.8", "2.17"])
def test_no_execute_runs_nothing_and_claims_no_task(kfp_server: Callable[..., Any], tmp_path: Path,
                                                    pipelines: dict[str, Path], compat: str) -> None:
    """--no-execute, v1 and v2 alike: the run ends SUCCEEDED after --run-delay (the flag's contract, which CI
    doubles rely on) but no task is recorded as run and the record says it was not executed."""
    srv = kfp_server(compat=compat, execute=False, run_delay=0.0)
    run_id = _start(srv.url, _compile(tmp_path, "fails")["fails"], "not-run")
    assert _wait(srv.url, run_id, ("Succeeded", "Failed"))["status"] == "Succeeded"
    record = srv.store.get("run", run_id)
    assert record["tasks"] == [] and record["executed"] is False
    assert not (srv.store.data_dir / "runs" / run_id).exists()
    detail = httpx.get(f"{srv.url}{V1}/runs/{run_id}").json()
    nodes = json.loads(detail["pipeline_runtime"]["workflow_manifest"])["status"].get("nodes") or {}
    assert [n for n in nodes.values() if n.get("type") == "Pod"] == []
    if compat == "2.17":
        ir = yaml.safe_load(pipelines["always-fails"].read_text())
        v2 = httpx.post(f"{srv.url}/apis/v2beta1/runs", json={"display_name": "v2", "pipeline_spec": ir}).json()
        deadline = time.monotonic() + 10
        while srv.store.get("run", v2["run_id"])["state"] != "SUCCEEDED" and time.monotonic() < deadline:
            time.sleep(0.05)
        v2_record = srv.store.get("run", v2["run_id"])
        assert (v2_record["state"], v2_record["tasks"], v2_record["executed"]) == ("SUCCEEDED", [], False)
