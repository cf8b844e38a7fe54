"""KFP v1 runs execute: kfp 1.8 pipelines (compiled to Argo in the kfp 1.8 venv) run on ``--compat 1.8`` through
the kfp 1.8 client, over loopback, with real task processes on the host."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .test_kfp1_client import kfp1_python

pytestmark = [pytest.mark.kfp1, pytest.mark.slow]
FLOW = Path(__file__).parent / "kfp1" / "argo_flow.py"


def _flow(srv: Any, tmp_path: Path, *names: str) -> dict[str, Any]:
    done = subprocess.run([str(kfp1_python()), str(FLOW), srv.url, str(tmp_path), *names],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _tasks(srv: Any, run_id: str) -> dict[str, dict[str, Any]]:
    run = srv.store.get("run", run_id)
    return {t["node_name"].split(".", 1)[-1]: t for t in run["tasks"]}


def test_a_kfp1_pipeline_with_a_condition_a_loop_and_an_artifact_succeeds(kfp_server: Callable[..., Any],
                                                                          tmp_path: Path) -> None:
    srv = kfp_server(compat="1.8", execute=True)
    out = _flow(srv, tmp_path, "cond-loop")["cond-loop"]
    assert out["status"] == "Succeeded", out
    tasks = _tasks(srv, out["run_id"])
    by_display: dict[str, list[dict[str, Any]]] = {}
    for t in tasks.values():
        by_display.setdefault(t["display_name"], []).append(t)
    produce = by_display["produce"][0]
    values = {p["name"]: p["value"] for p in produce["outputs"]["parameters"]}
    assert (values["produce-size"], values["produce-total"]) == ("big", "30")
    # the loop over static items ran once per item, each reading the artifact produced upstream
    loop = [t for t in tasks.values() if t["type"] == "TaskGroup"]
    assert len(loop) == 1 and loop[0]["phase"] == "Succeeded" and len(loop[0]["children"]) == 3
    consumes = by_display["consume"]
    assert sorted(c["phase"] for c in consumes) == ["Succeeded"] * 3
    outputs = [Path(a["path"]).read_text() for c in consumes for a in c["outputs"]["artifacts"]
               if a["name"] == "consume-Output"]
    assert sorted(outputs) == ["a:3", "b:3", "c:3"]
    metrics = {k: v for a in srv.store.run_artifacts(out["run_id"]) if a["type"] == "system.Metrics"
               for k, v in a["metadata"].items()}
    assert metrics == {"rows-a": 3, "rows-b": 3, "rows-c": 3}
    # the false condition is Skipped, its task never ran
    skipped = [t for t in tasks.values() if t["phase"] == "Skipped"]
    assert len(skipped) == 1 and "evaluated false" in skipped[0]["message"] and "explode" not in by_display
    # a ContainerOp whose command runs on the host, given an output parameter: its file output is an artifact
    count = by_display["count-rows"][0]
    assert count["phase"] == "Succeeded"
    assert [Path(a["path"]).read_text() for a in count["outputs"]["artifacts"]] == ["3\n"]
    # the exit handler ran last, with the workflow's status
    handler = [t for t in tasks.values() if t["node_name"].endswith(".onExit")]
    assert len(handler) == 1 and handler[0]["phase"] == "Succeeded"
    assert "pipeline finished: Succeeded" in Path(handler[0]["log"]).read_text()
    assert all(t["state"] in ("SUCCEEDED", "SKIPPED") for t in tasks.values())
    # the Argo status the v1 API shows carries one node per task
    assert len(out["nodes"]) >= len([t for t in tasks.values() if t["type"] == "Pod"])


def test_a_kfp1_pipeline_built_to_fail_ends_failed_with_its_exception(kfp_server: Callable[..., Any],
                                                                      tmp_path: Path) -> None:
    srv = kfp_server(compat="1.8", execute=True)
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
    assert all(e.startswith("cannot run locally: ") and "\n" not in e for e in errors.values()), errors
