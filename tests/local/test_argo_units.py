"""The Argo interpreter's semantics on small hand-written workflows, run by its worker entry point (``python -m
kfp_ci.local._argo RUN_DIR``, as the server starts it): ``when``, failFast, Omitted, retries, references."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from kfp_ci.local._argo import WorkflowError, evaluate, substitute
from kfp_ci.local._argo_exec import PathMap


def _run(tmp_path: Path, templates: list[dict[str, Any]], params: dict[str, Any] | None = None,
         **spec: Any) -> dict[str, Any]:
    run_dir = tmp_path / "0123abcd-run"
    run_dir.mkdir(parents=True)
    doc = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"generateName": "wf-"},
           "spec": {"entrypoint": templates[0]["name"], "templates": templates, **spec}}
    (run_dir / "pipeline.yaml").write_text(yaml.safe_dump(doc))
    (run_dir / "params.json").write_text(json.dumps(params or {}))
    done = subprocess.run([sys.executable, "-m", "kfp_ci.local._argo", str(run_dir)], capture_output=True,
                          text=True, timeout=60)
    result: dict[str, Any] = json.loads((run_dir / "result.json").read_text())
    result["returncode"], result["log"] = done.returncode, done.stdout + done.stderr
    result["by_name"] = {t["display_name"]: t for t in result["tasks"]}
    return result


def _sh(name: str, script: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "container": {"image": "busybox", "command": ["sh", "-c", script]}, **extra}


@pytest.mark.parametrize(("expression", "value"), [
    ('"big" == "big"', True), ('"big" != "big"', False), ("6 < 3", False), ("2.5 >= 2", True),
    ('"a" == "a" && !(1 > 2)', True), ('"x" == "y" || true', True), ("'heads' == 'heads'", True),
    ('"3" == 3', False), ('"abc" =~ "^a"', True),
])
def test_when_expressions(expression: str, value: bool) -> None:
    assert evaluate(expression) is value


@pytest.mark.parametrize("expression", ["big == 3", '"a" <', "1 < \"b\"", "(1 < 2", "3"])
def test_bad_when_expressions_are_one_clear_error(expression: str) -> None:
    with pytest.raises(WorkflowError, match="'when' expression"):
        evaluate(expression)


def test_substitution_resolves_known_names_and_rejects_unknown_argo_references() -> None:
    scope = {"inputs.parameters.x": "1", "item": "a"}
    assert substitute("{{inputs.parameters.x}}-{{ item }}-{{not.argo}}", scope) == "1-a-{{not.argo}}"
    with pytest.raises(WorkflowError, match=r"unresolved reference \{\{tasks.t.outputs.parameters.y\}\}"):
        substitute("{{tasks.t.outputs.parameters.y}}", scope)


def test_declared_container_paths_map_into_the_task_folder_and_back(tmp_path: Path) -> None:
    pmap = PathMap(tmp_path / "fs", ["/tmp/x", "/tmp/outputs/out/data"])
    assert pmap.rewrite("echo 1 > /tmp/x; cat /tmp/xyz /tmp/outputs/out/data") == (
        f"echo 1 > {tmp_path}/fs/tmp/x; cat /tmp/xyz {tmp_path}/fs/tmp/outputs/out/data")
    assert pmap.back(f"No such file: '{tmp_path}/fs/tmp/x'") == "No such file: '/tmp/x'"


def test_dependencies_order_outputs_and_parameters(tmp_path: Path) -> None:
    out = _run(tmp_path, [
        {"name": "main", "inputs": {"parameters": [{"name": "greeting"}]}, "dag": {"tasks": [
            {"name": "second", "template": "echo", "dependencies": ["first"], "arguments": {"parameters": [
                {"name": "text",
                 "value": "{{tasks.first.outputs.parameters.said}}+{{workflow.parameters.greeting}}"}]}},
            {"name": "first", "template": "echo", "arguments": {"parameters": [
                {"name": "text", "value": "{{inputs.parameters.greeting}}"}]}},
        ]}},
        {"name": "echo", "inputs": {"parameters": [{"name": "text"}]},
         "container": {"image": "busybox", "command": ["sh", "-c", "printf '%s\\n' \"$0\" > /tmp/said"],
                       "args": ["{{inputs.parameters.text}}"]},
         "outputs": {"parameters": [{"name": "said", "valueFrom": {"path": "/tmp/said"}}]}},
    ], params={"greeting": "hi"}, arguments={"parameters": [{"name": "greeting", "value": "default"}]})
    tasks = out["by_name"]
    assert out["ok"] and out["returncode"] == 0, out
    # the run's parameter replaced the workflow's default; one trailing newline is trimmed, as Argo does
    assert tasks["first"]["outputs"] == {"said": "hi"}
    assert (tasks["second"]["arguments"], tasks["second"]["outputs"]) == ({"text": "hi+hi"}, {"said": "hi+hi"})
    assert tasks["second"]["argo"]["outputs"]["parameters"] == [{"name": "said", "value": "hi+hi"}]
    assert tasks["first"]["end"] <= tasks["second"]["start"]
    assert [h["state"] for h in tasks["second"]["state_history"]] == ["RUNNING", "SUCCEEDED"]
    assert tasks["second"]["parent_id"] == tasks["wf-0123a"]["node_id"] == "wf-0123a"
    assert tasks["wf-0123a"]["children"] == [tasks["first"]["node_id"], tasks["second"]["node_id"]]


def test_a_failure_stops_scheduling_and_without_fail_fast_dependents_are_omitted(tmp_path: Path) -> None:
    templates = [
        {"name": "main", "dag": {"tasks": [
            {"name": "bad", "template": "bad"},
            {"name": "after-bad", "template": "ok", "dependencies": ["bad"]},
            {"name": "slow-sibling", "template": "ok"},
        ]}},
        _sh("bad", "echo 'RuntimeError: \x1b[31mred\x1b[0m disk full' >&2; exit 3"),
        _sh("ok", "true"),
    ]
    fast = _run(tmp_path / "a", templates)
    assert not fast["ok"] and fast["error"] == "task bad failed: RuntimeError: red disk full (exit code 3)"
    assert "after-bad" not in fast["by_name"]
    templates[0]["dag"]["failFast"] = False
    slow = _run(tmp_path / "b", templates)
    assert slow["by_name"]["after-bad"]["phase"] == "Omitted" and slow["by_name"]["after-bad"]["state"] == "SKIPPED"
    assert slow["by_name"]["slow-sibling"]["phase"] == "Succeeded"


def test_retry_strategy_runs_a_failing_task_again(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    out = _run(tmp_path, [
        {"name": "main", "dag": {"tasks": [{"name": "flaky", "template": "flaky"}]}},
        _sh("flaky", f"echo x >> {counter}; [ $(wc -l < {counter}) -ge 3 ]", retryStrategy={"limit": "2"}),
    ])
    assert out["ok"], out["error"]
    assert counter.read_text().count("x") == 3


def test_a_bad_reference_fails_that_task_and_the_run_says_which(tmp_path: Path) -> None:
    out = _run(tmp_path, [
        {"name": "main", "dag": {"tasks": [
            {"name": "t", "template": "ok", "when": "{{tasks.nothing.outputs.parameters.x}} == 1"}]}},
        _sh("ok", "true"),
    ])
    assert not out["ok"]
    assert out["error"] == "task t failed: unresolved reference {{tasks.nothing.outputs.parameters.x}}"


@pytest.mark.parametrize(("doc_spec", "message"), [
    ({"entrypoint": "nope", "templates": []}, "entrypoint 'nope' is not one of its templates"),
    ({"entrypoint": "m", "templates": [{"name": "m", "dag": {"tasks": []}}], "onExit": "gone"},
     "onExit template 'gone' is not one of its templates"),
])
def test_a_workflow_that_cannot_start_fails_the_run(tmp_path: Path, doc_spec: dict[str, Any], message: str) -> None:
    from kfp_ci.local._executor import package_problem

    doc = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "spec": doc_spec}
    assert message in package_problem(yaml.safe_dump(doc).encode())


def test_a_task_past_its_deadline_is_stopped_with_its_children(tmp_path: Path) -> None:
    out = _run(tmp_path, [
        {"name": "main", "dag": {"tasks": [{"name": "stuck", "template": "stuck"}]}},
        _sh("stuck", "sleep 30 & wait", activeDeadlineSeconds=1),
    ])
    assert out["error"] == "task stuck failed: the task ran longer than its timeout (1 s) and was stopped"
    sleepers = [p for p in Path("/proc").glob("[0-9]*") if _cmdline(p) == "sleep 30"
                and str(tmp_path) in _environ(p)]
    assert sleepers == []


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def _environ(proc: Path) -> str:
    try:
        return (proc / "environ").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def test_raw_artifacts_are_files_with_their_references_resolved(tmp_path: Path) -> None:
    out = _run(tmp_path, [
        {"name": "main", "dag": {"tasks": [{"name": "show", "template": "show", "arguments": {
            "parameters": [{"name": "x", "value": "{{workflow.parameters.p}}"}],
            "artifacts": [{"name": "given", "raw": {"data": "task {{workflow.name}}"}}]}}]}},
        {"name": "show", "inputs": {"parameters": [{"name": "x"}], "artifacts": [
            {"name": "given", "path": "/in/given"},
            {"name": "own", "path": "/in/own", "raw": {"data": "x={{inputs.parameters.x}}"}}]},
         "container": {"image": "busybox", "command": ["sh", "-c", "cat /in/given /in/own > /out/both"]},
         "outputs": {"parameters": [{"name": "both", "valueFrom": {"path": "/out/both"}}]}},
    ], params={"p": "7"}, arguments={"parameters": [{"name": "p", "value": "1"}]})
    assert out["ok"], out["error"]
    assert out["by_name"]["show"]["outputs"] == {"both": "task wf-0123ax=7"}


def test_the_images_python_is_the_servers_and_a_missing_module_says_where_to_install_it(tmp_path: Path) -> None:
    out = _run(tmp_path, [
        {"name": "main", "dag": {"tasks": [{"name": "which", "template": "which"},
                                           {"name": "needs", "template": "needs"}], "failFast": False}},
        {"name": "which", "container": {"image": "python:3.7", "command": [
            "/usr/local/bin/python3.7", "-c", "import sys; open('/out/exe', 'w').write(sys.prefix)"]},
         "outputs": {"parameters": [{"name": "exe", "valueFrom": {"path": "/out/exe"}}]}},
        {"name": "needs", "container": {"image": "python:3.7", "command": [
            "sh", "-c", "python3 -c 'import yaml, kfp_ci_no_such_module.sub'"]}},
    ])
    assert out["by_name"]["which"]["outputs"]["exe"] == sys.prefix  # the server's venv too
    assert out["by_name"]["needs"]["error"] == (
        "ModuleNotFoundError: No module named 'kfp_ci_no_such_module' - the component runs with kfp-ci serve's "
        "Python: install kfp_ci_no_such_module where the server runs (exit code 1)")


def test_the_worker_and_its_tasks_die_when_the_server_lifeline_closes(tmp_path: Path) -> None:
    import os

    run_dir = tmp_path / "0123abcd-run"
    run_dir.mkdir()
    doc = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"generateName": "wf-"},
           "spec": {"entrypoint": "main", "templates": [
               {"name": "main", "dag": {"tasks": [{"name": "nap", "template": "nap"}]}},
               _sh("nap", "sleep 30 & wait")]}}
    (run_dir / "pipeline.yaml").write_text(yaml.safe_dump(doc))
    (run_dir / "params.json").write_text("{}")
    read, write = os.pipe()
    proc = subprocess.Popen([sys.executable, "-m", "kfp_ci.local._argo", str(run_dir), str(read)],
                            pass_fds=(read,), start_new_session=True, stdout=subprocess.DEVNULL)
    os.close(read)
    try:
        deadline = time.monotonic() + 20
        while not _sleepers(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _sleepers(tmp_path), "the task should be running"
        os.close(write)  # the server is gone
        assert proc.wait(timeout=10) == -signal.SIGKILL
        time.sleep(0.2)
        assert _sleepers(tmp_path) == []
    finally:
        if proc.poll() is None:
            proc.kill()


def _sleepers(tmp_path: Path) -> list[Path]:
    return [p for p in Path("/proc").glob("[0-9]*") if _cmdline(p) == "sleep 30" and str(tmp_path) in _environ(p)
            and (p / "stat").exists() and _state(p) not in ("Z", "X")]


def _state(proc: Path) -> str:
    try:
        return (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "X"
