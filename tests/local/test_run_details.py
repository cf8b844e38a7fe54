"""Run details as KFP fills them, failure messages a person can read, KFP 1.x's run shapes, a relative data
directory, and when ``kfp-ci demo`` keeps its server up. Real worker processes, real HTTP, KFP's swagger."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from kfp_ci.gate._mlmd import MlmdClient
from kfp_ci.local._demo import keeps_serving

from .conftest import Wire
from .test_api import V1, V2, upload, upload_version

ARGO = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: argo-add-}
spec:
  entrypoint: argo-add
  arguments:
    parameters: [{name: a, value: '1'}]
  templates:
  - name: argo-add
    dag:
      tasks:
      - {name: add, template: add}
  - name: add
    container: {image: 'python:3.7', command: [python, -c, 'print(1)']}
"""


@pytest.fixture(scope="module")
def more_pipelines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from kfp import compiler

    from . import artifact_defs as d

    out = tmp_path_factory.mktemp("more-pipelines")
    paths = {}
    for name, func in [("hand-over", d.hand_over), ("explodes", d.explodes)]:
        paths[name] = out / f"{name}.yaml"
        compiler.Compiler().compile(func, str(paths[name]))
    (out / "argo-add.yaml").write_text(ARGO)
    paths["argo"] = out / "argo-add.yaml"
    return paths


def _wait(url: str, path: str, done: Callable[[dict[str, Any]], bool], timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = httpx.get(f"{url}{path}").json()
        if done(body) or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


def _finished(run: dict[str, Any]) -> bool:
    return run.get("state") in ("SUCCEEDED", "FAILED")


def test_run_details_name_tasks_executions_and_artifacts_like_kfp_and_ml_metadata(
        kfp_server: Callable[..., Any], more_pipelines: dict[str, Path], wire: Wire) -> None:
    srv = kfp_server()
    pipeline = upload(srv.url, more_pipelines["hand-over"], name="hand-over").json()
    created = httpx.post(f"{srv.url}{V2}/runs", json={
        "display_name": "r", "pipeline_version_reference": {"pipeline_id": pipeline["pipeline_id"]}}).json()
    assert created["service_account"] == "pipeline-runner"  # KFP's default when the request names none
    run = _wait(srv.url, f"{V2}/runs/{created['run_id']}", _finished)
    assert run["state"] == "SUCCEEDED", run.get("error")
    details = run["run_details"]
    tasks = {t["display_name"]: t for t in details["task_details"]}
    assert set(tasks) == {"produce", "consume"}
    produce, consume = tasks["produce"], tasks["consume"]
    assert len({produce["task_id"], consume["task_id"]}) == 2
    assert all(t["run_id"] == run["run_id"] for t in tasks.values())
    for t in tasks.values():
        assert [h["state"] for h in t["state_history"]] == ["RUNNING", "SUCCEEDED"]
        assert t["pod_name"].startswith("hand-over-") and "parent_task_id" not in t  # both at the root
        assert int(t["execution_id"]) > 0
    # consume depends on produce: produce's child task; the artifact produce wrote is the one consume read
    assert produce["child_tasks"] == [{"task_id": consume["task_id"], "pod_name": consume["pod_name"]}]
    assert "child_tasks" not in consume
    handed = produce["outputs"]["data"]["artifact_ids"]
    assert len(handed) == 1 and consume["inputs"]["data"]["artifact_ids"] == handed
    # the ML Metadata route answers with the same ids
    with httpx.Client() as http:
        mlmd = MlmdClient(http, srv.url)
        context = mlmd.get_context_by_type_and_name("system.PipelineRun", run["run_id"])
        assert context is not None and str(context.id) == details["pipeline_run_context_id"]
        pipeline_context = mlmd.get_context_by_type_and_name("system.Pipeline", "hand-over")
        assert pipeline_context is not None and str(pipeline_context.id) == details["pipeline_context_id"]
        assert details["pipeline_context_id"] != str(context.id)
        assert mlmd.get_context_by_type_and_name("system.Pipeline", "no-such-pipeline") is None
        executions = {e.custom_properties.get("task_name"): e.id for e in mlmd.get_executions_by_context(context.id)}
        assert executions == {name: int(t["execution_id"]) for name, t in tasks.items()}
        artifacts = mlmd.get_artifacts_by_context(context.id)
        assert [str(a.id) for a in artifacts] == handed and artifacts[0].type == "system.Dataset"
        events = mlmd.get_events_by_execution_ids([int(produce["execution_id"])])
        assert [(e.artifact_id, e.name) for e in events] == [(int(handed[0]), "data")]
    # the same ids after a restart of the server (they live in the store)
    srv.stop()
    again = kfp_server(data_dir=srv.options.data_dir)
    assert httpx.get(f"{again.url}{V2}/runs/{run['run_id']}").json()["run_details"] == details
    recurring = httpx.post(f"{again.url}{V2}/recurringruns", json={
        "display_name": "nightly", "pipeline_version_reference": {"pipeline_id": pipeline["pipeline_id"]},
        "trigger": {"cron_schedule": {"cron": "0 0 2 * * *"}}, "mode": "DISABLE"}).json()
    assert recurring["service_account"] == "pipeline-runner"
    assert wire.validate("v2beta1-2.17.0") >= 6


def test_multi_user_runs_default_to_the_profile_editor_account(kfp_server: Callable[..., Any],
                                                               pipelines: dict[str, Path], wire: Wire) -> None:
    srv = kfp_server(execute=False, multi_user=True)
    user = {"kubeflow-userid": "user@example.com"}
    ns = "kubeflow-user-example-com"
    with pipelines["add-square"].open("rb") as fh:
        p = httpx.post(f"{srv.url}{V2}/pipelines/upload", params={"name": "p", "namespace": ns}, headers=user,
                       files={"uploadfile": ("p.yaml", fh)}).json()
    run = httpx.post(f"{srv.url}{V2}/runs", params={"namespace": ns}, headers=user, json={
        "display_name": "r", "pipeline_version_reference": {"pipeline_id": p["pipeline_id"]}}).json()
    assert run["service_account"] == "default-editor"
    mine = httpx.post(f"{srv.url}{V2}/runs", params={"namespace": ns}, headers=user, json={
        "display_name": "r2", "service_account": "my-runner",
        "pipeline_version_reference": {"pipeline_id": p["pipeline_id"]}}).json()
    assert mine["service_account"] == "my-runner"  # one the request names is kept
    assert wire.validate("v2beta1-2.17.0") >= 3


def test_failure_messages_hold_the_components_exception(kfp_server: Callable[..., Any],
                                                        more_pipelines: dict[str, Path], pipelines: dict[str, Path],
                                                        wire: Wire) -> None:
    srv = kfp_server()
    data_dir = str(srv.options.data_dir)
    for path, expected in [(pipelines["always-fails"], "RuntimeError: boom"),
                           (more_pipelines["explodes"], "FileNotFoundError: [Errno 2] No such file or directory: "
                                                        "'no-such-file.json'")]:
        p = upload(srv.url, path, name=path.stem).json()
        created = httpx.post(f"{srv.url}{V2}/runs", json={
            "display_name": "r", "pipeline_version_reference": {"pipeline_id": p["pipeline_id"]}}).json()
        run = _wait(srv.url, f"{V2}/runs/{created['run_id']}", _finished)
        assert run["state"] == "FAILED"
        (task,) = run["run_details"]["task_details"]
        history = task["state_history"][-1]["error"]["message"]
        for message in (run["error"]["message"], task["error"]["message"], history):
            assert message.splitlines()[-1] == expected, message
            assert "\x1b" not in message and data_dir not in message and "site-packages" not in message
            assert "/tmp" not in message and str(Path.home()) not in message
        assert "in " in task["error"]["message"].splitlines()[0]  # the frame it was raised in, by file name only
    assert wire.validate("v2beta1-2.17.0") >= 4


def test_kfp1_default_version_references_and_workflow_status(kfp_server: Callable[..., Any],
                                                             pipelines: dict[str, Path],
                                                             more_pipelines: dict[str, Path], wire: Wire) -> None:
    srv = kfp_server(compat="1.8")
    with more_pipelines["argo"].open("rb") as fh:
        p = httpx.post(f"{srv.url}{V1}/pipelines/upload", params={"name": "argo-add"},
                       files={"uploadfile": ("argo-add.yaml", fh)}).json()
    first = p["default_version"]["id"]
    second = upload_version(srv.url, more_pipelines["argo"], api=V1, name="v2", pipelineid=p["id"]).json()
    assert httpx.get(f"{srv.url}{V1}/pipelines/{p['id']}").json()["default_version"]["id"] == second["id"]
    # POST /pipelines/{id}/default_version/{version} changes the default: templates, runs from the pipeline
    assert httpx.post(f"{srv.url}{V1}/pipelines/{p['id']}/default_version/{first}").status_code == 200
    assert httpx.get(f"{srv.url}{V1}/pipelines/{p['id']}").json()["default_version"]["id"] == first
    e = httpx.post(f"{srv.url}{V1}/experiments", json={"name": "e"}).json()
    run = httpx.post(f"{srv.url}{V1}/runs", json={
        "name": "from-pipeline", "pipeline_spec": {"pipeline_id": p["id"]},
        "resource_references": [{"key": {"type": "EXPERIMENT", "id": e["id"]}, "relationship": "OWNER"}]}).json()
    refs = {r["key"]["type"]: r for r in run["run"]["resource_references"]}
    assert refs["PIPELINE_VERSION"]["key"]["id"] == first and refs["PIPELINE_VERSION"]["name"] == "argo-add"
    assert refs["EXPERIMENT"]["name"] == "e"
    spec = run["run"]["pipeline_spec"]
    assert spec["pipeline_name"] == "argo-add" and json.loads(spec["workflow_manifest"])["kind"] == "Workflow"
    third = upload_version(srv.url, more_pipelines["argo"], api=V1, name="v3", pipelineid=p["id"]).json()
    assert httpx.get(f"{srv.url}{V1}/pipelines/{p['id']}").json()["default_version"]["id"] == third["id"]
    assert httpx.post(f"{srv.url}{V1}/pipelines/{p['id']}/default_version/nope").status_code == 404

    # a job's runs name it as their CREATOR
    v2 = upload_version(srv.url, pipelines["add-square"], api=V1, name="ir", pipelineid=p["id"]).json()
    job = httpx.post(f"{srv.url}{V1}/jobs", json={
        "name": "every-second", "enabled": True, "max_concurrency": "1",
        "trigger": {"periodic_schedule": {"interval_second": "1"}},
        "resource_references": [{"key": {"type": "EXPERIMENT", "id": e["id"]}, "relationship": "OWNER"},
                                {"key": {"type": "PIPELINE_VERSION", "id": v2["id"]}, "relationship": "CREATOR"}]})
    assert job.status_code == 200, job.text
    time.sleep(1.2)
    srv.scheduler_tick()
    listed = _wait(srv.url, f"{V1}/runs?resource_reference_key.type=EXPERIMENT&resource_reference_key.id={e['id']}"
                   "&filter=" + json.dumps({"predicates": [{"op": "IS_SUBSTRING", "key": "name",
                                                           "string_value": "every-second"}]}),
                   lambda body: bool(body.get("runs")), timeout=10)
    fired = listed["runs"][0]
    refs = {r["key"]["type"]: r for r in fired["resource_references"]}
    assert refs["JOB"] == {"key": {"type": "JOB", "id": job.json()["id"]}, "name": "every-second",
                           "relationship": "CREATOR"}
    assert refs["EXPERIMENT"]["name"] == "e" and refs["PIPELINE_VERSION"]["name"] == "ir"
    httpx.post(f"{srv.url}{V1}/jobs/{job.json()['id']}/disable")
    # the run's Argo status: one Pod node per task with its phase, under the workflow's DAG node
    detail = _wait(srv.url, f"{V1}/runs/{fired['id']}",
                   lambda body: body["run"].get("status") in ("Succeeded", "Failed"))
    assert detail["run"]["status"] == "Succeeded", detail["run"].get("error")
    workflow = json.loads(detail["pipeline_runtime"]["workflow_manifest"])
    nodes = workflow["status"]["nodes"]
    pods = {n["displayName"]: n for n in nodes.values() if n["type"] == "Pod"}
    assert {name: n["phase"] for name, n in pods.items()} == {"add": "Succeeded", "square": "Succeeded"}
    (dag,) = [n for n in nodes.values() if n["type"] == "DAG"]
    assert dag["children"] == [pods["add"]["id"]] and pods["add"]["children"] == [pods["square"]["id"]]
    assert workflow["status"]["phase"] == "Succeeded" and all(n["startedAt"] for n in pods.values())
    assert wire.validate("v1beta1-1.8.5") >= 10


def test_a_relative_data_dir_runs_pipelines(kfp_server: Callable[..., Any], pipelines: dict[str, Path],
                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    srv = kfp_server(data_dir=Path("relative") / "data")
    assert srv.options.data_dir.is_absolute()
    assert srv.options.data_dir.resolve() == (tmp_path / "relative" / "data").resolve()
    p = upload(srv.url, pipelines["add-square"], name="p").json()
    created = httpx.post(f"{srv.url}{V2}/runs", json={
        "display_name": "r", "pipeline_version_reference": {"pipeline_id": p["pipeline_id"]}}).json()
    run = _wait(srv.url, f"{V2}/runs/{created['run_id']}", _finished)
    assert run["state"] == "SUCCEEDED", run.get("error")


@pytest.mark.parametrize(("keep", "exit_at_end", "env", "interactive", "expected"), [
    (False, False, {}, True, True),               # a person at a terminal: stay up until Ctrl-C
    (False, False, {"CI": "true"}, True, False),  # CI: stop at once
    (False, False, {}, False, False),             # output piped or captured: stop at once
    (False, True, {}, True, False),               # --exit
    (True, False, {"CI": "1"}, False, True),      # --keep-serving wins
    (False, False, {"CI": "false"}, True, True),
])
def test_demo_keeps_serving_only_for_a_person(keep: bool, exit_at_end: bool, env: dict[str, str], interactive: bool,
                                              expected: bool) -> None:
    assert keeps_serving(keep_serving=keep, exit_at_end=exit_at_end, env=env, interactive=interactive) is expected


def _demo_in_terminal(tmp_path: Path, env: dict[str, str],
                      *extra: str) -> tuple[Any, int, Callable[[float, str], str]]:
    """The demo's ending under a pseudo-terminal (stdin and stdout are a tty, as for a person)."""
    import os
    import pty
    import subprocess
    import sys

    leader, follower = pty.openpty()
    script = Path(__file__).parent / "demo_stub_flow.py"
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "demo"), *extra], stdin=follower,
                            stdout=follower, stderr=follower, env=env, cwd=Path(__file__).resolve().parents[2])
    os.close(follower)
    seen: list[str] = []

    def read(timeout: float, until: str = "\0") -> str:
        import select

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and until not in "".join(seen):
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    seen.append(os.read(leader, 4096).decode(errors="replace"))
                except OSError:  # the process closed the terminal
                    break
            elif proc.poll() is not None:
                break
        return "".join(seen)
    return proc, leader, read


def test_demo_in_a_terminal_serves_until_ctrl_c_and_under_ci_stops_at_once(tmp_path: Path) -> None:
    import os
    import re
    import signal

    env = {k: v for k, v in os.environ.items() if k not in ("CI", "GITHUB_ACTIONS")}
    proc, leader, read = _demo_in_terminal(tmp_path, env)
    try:
        out = read(60, "until you press Ctrl-C")
        assert "until you press Ctrl-C" in out, out
        url = re.search(r"stays up at (http://127\.0\.0\.1:\d+)/", out)
        assert url is not None
        time.sleep(1)
        assert proc.poll() is None  # still serving
        assert httpx.get(f"{url.group(1)}/apis/v2beta1/healthz").status_code == 401  # up, behind its Dex login
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert "Stopping the server" in read(2, "Stopping the server")
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{url.group(1)}/apis/v2beta1/healthz", timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    for extra_env, args in [({"CI": "true"}, ()), ({}, ("--exit",))]:
        proc, leader, read = _demo_in_terminal(tmp_path, {**env, **extra_env}, *args)
        try:
            assert proc.wait(timeout=60) == 0
            out = read(2, "Look at")
            assert "Look at" in out and "Ctrl-C" not in out
        finally:
            if proc.poll() is None:
                proc.kill()
            os.close(leader)
