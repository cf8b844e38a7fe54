"""KFP v1 runs: the Argo workflow that kfp 1.8 compiles, interpreted on the host.

``python -m kfp_ci.local._argo RUN_DIR [LIFELINE_FD]`` is the run's worker (the executor starts it instead of
``_worker`` for an Argo package): it reads ``pipeline.yaml`` and ``params.json`` and writes ``result.json`` in
``_worker``'s format,
``{"ok", "error", "tasks": [...], "artifacts": [...]}``, after every change, plus ``"metrics"``: the
``mlpipeline-metrics`` of the tasks as KFP 1.x reports them in ``run.metrics`` (``{name, node_id, number_value,
format}``).

What runs: the entrypoint DAG and its tasks in dependency order (independent tasks in parallel), template input
parameters and artifacts, output parameters (``valueFrom.path``) and artifacts passed as files, ``when``
(``dsl.Condition``), ``withItems`` / ``withParam`` (``dsl.ParallelFor``), ``onExit`` (``dsl.ExitHandler``, with
``{{workflow.status}}``), ``retryStrategy.limit`` and ``activeDeadlineSeconds``. A DAG stops scheduling new tasks
after a failure (Argo's ``failFast``); a task whose dependency failed is Omitted, one whose ``when`` is false is
Skipped, and both count as done for their dependents as in Argo. Containers run on the host (``_argo_exec``).

Each node (the workflow's DAG, every DAG task, loop group and iteration, container and exit handler) is one task
record: ``name`` (Argo's display name), ``state`` (the v2 state: RUNNING, SUCCEEDED, FAILED, SKIPPED), ``start``,
``end``, ``error``, and Argo's node fields ``node_id``, ``node_name``, ``display_name``, ``type`` (DAG, Pod,
TaskGroup, Skipped), ``phase`` (Running, Succeeded, Failed, Error, Skipped, Omitted), ``message``, ``template``,
``parent_id``, ``children`` (node ids), ``boundary_id``, ``pod_name`` (Pod nodes), ``arguments`` / ``outputs``
(parameter name -> value, as ``_worker`` records them), ``argo`` (the node's Argo ``inputs`` / ``outputs``:
``{"parameters": [{name, value}], "artifacts": [{name, path}]}``), ``state_history`` (``[{update_time,
state}]``) and ``log`` (the task's log file).
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from kfp_ci.local import _argo_exec

_REF = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_ARGO_PREFIXES = ("inputs.", "outputs.", "tasks.", "steps.", "item", "workflow.", "pod.")
_PHASE_STATE = {"Running": "RUNNING", "Succeeded": "SUCCEEDED", "Failed": "FAILED", "Error": "FAILED",
                "Skipped": "SKIPPED", "Omitted": "SKIPPED", "Pending": "PENDING"}
_DONE = ("Succeeded", "Failed", "Error", "Skipped", "Omitted")
_METRIC_NAME = re.compile(r"[a-z]([-a-z0-9]{0,62}[a-z0-9])?")


def is_workflow(doc: Any) -> bool:
    return isinstance(doc, dict) and (str(doc.get("apiVersion", "")).startswith("argoproj.io")
                                      or doc.get("kind") == "Workflow")


def problem(doc: Mapping[str, Any]) -> str:
    """Why this Argo workflow cannot start at all ('' when it can; single tasks fail on their own)."""
    if doc.get("kind") != "Workflow":
        return f"the package is an Argo {doc.get('kind') or 'document'}, not a Workflow"
    spec = doc.get("spec") or {}
    templates = {t.get("name") for t in spec.get("templates") or [] if isinstance(t, dict)}
    entry = spec.get("entrypoint")
    if not entry or entry not in templates:
        return f"the Argo workflow's entrypoint {entry!r} is not one of its templates"
    if spec.get("onExit") and spec["onExit"] not in templates:
        return f"the Argo workflow's onExit template {spec['onExit']!r} is not one of its templates"
    if spec.get("workflowTemplateRef"):
        return "the Argo workflow refers to a WorkflowTemplate; the local runner has only the package"
    return ""


class WorkflowError(Exception):
    """A reference or expression of the workflow that cannot be resolved: the node fails with this message."""


def fnv32a(text: str) -> int:
    h = 0x811C9DC5
    for byte in text.encode():
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


def substitute(text: str, scope: Mapping[str, str]) -> str:
    """Resolve ``{{name}}`` from ``scope``; an Argo reference (inputs., tasks., item...) not in it is an error."""
    def one(m: re.Match[str]) -> str:
        key = m.group(1)
        if key in scope:
            return scope[key]
        if key.startswith(_ARGO_PREFIXES):
            raise WorkflowError(f"unresolved reference {{{{{key}}}}}")
        return m.group(0)
    return _REF.sub(one, text)


# ----------------------------------------------------------------------------------------------- when
_TOKEN = re.compile(r"\s*(?:(?P<num>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)|(?P<str>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')"
                    r"|(?P<op>==|!=|<=|>=|=~|!~|&&|\|\||[<>!()])|(?P<word>[A-Za-z_][\w.\-]*))")


def evaluate(expression: str) -> bool:
    """A ``when`` expression after substitution (govaluate's subset KFP emits: comparisons of quoted strings and
    numbers, ``&&``, ``||``, ``!``, parentheses, ``true``/``false``)."""
    tokens: list[tuple[str, Any]] = []
    pos, text = 0, expression.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise WorkflowError(f"invalid 'when' expression {expression!r}")
        pos = m.end()
        if m.group("num") is not None:
            tokens.append(("val", float(m.group("num"))))
        elif m.group("str") is not None:
            tokens.append(("val", re.sub(r"\\(.)", r"\1", m.group("str")[1:-1])))
        elif m.group("op") is not None:
            tokens.append(("op", m.group("op")))
        else:
            word = m.group("word")
            if word not in ("true", "false"):
                raise WorkflowError(f"invalid 'when' expression {expression!r}: {word!r} is neither a number, "
                                    "a quoted string nor true/false")
            tokens.append(("val", word == "true"))
    parser = _Parser(tokens, expression)
    value = parser.parse_or()
    if parser.i != len(tokens):
        raise WorkflowError(f"invalid 'when' expression {expression!r}")
    if not isinstance(value, bool):
        raise WorkflowError(f"the 'when' expression {expression!r} is not true or false")
    return value


class _Parser:
    def __init__(self, tokens: list[tuple[str, Any]], text: str) -> None:
        self.tokens, self.i, self.text = tokens, 0, text

    def _peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _op(self, *ops: str) -> str | None:
        tok = self._peek()
        if tok and tok[0] == "op" and tok[1] in ops:
            self.i += 1
            return str(tok[1])
        return None

    def parse_or(self) -> Any:
        left = self.parse_and()
        while self._op("||"):
            right = self.parse_and()
            left = bool(left) or bool(right)
        return left

    def parse_and(self) -> Any:
        left = self.parse_cmp()
        while self._op("&&"):
            right = self.parse_cmp()
            left = bool(left) and bool(right)
        return left

    def parse_cmp(self) -> Any:
        left = self.parse_unary()
        op = self._op("==", "!=", "<", ">", "<=", ">=", "=~", "!~")
        if op is None:
            return left
        right = self.parse_unary()
        if op in ("==", "!="):
            return (left == right and type(left) is type(right)) == (op == "==")
        if op in ("=~", "!~"):
            return bool(re.search(str(right), str(left))) == (op == "=~")
        if type(left) is not type(right) or isinstance(left, bool):
            raise WorkflowError(f"the 'when' expression {self.text!r} compares {left!r} with {right!r}")
        return {"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[op]

    def parse_unary(self) -> Any:
        if self._op("!"):
            return not bool(self.parse_unary())
        if self._op("("):
            value = self.parse_or()
            if not self._op(")"):
                raise WorkflowError(f"invalid 'when' expression {self.text!r}: missing ')'")
            return value
        tok = self._peek()
        if tok is None or tok[0] != "val":
            raise WorkflowError(f"invalid 'when' expression {self.text!r}")
        self.i += 1
        return tok[1]


# ---------------------------------------------------------------------------------------------- nodes
class Node:
    """The outputs of a finished node, for references from later tasks."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record
        self.parameters: dict[str, str] = {}
        self.artifacts: dict[str, Path] = {}

    @property
    def phase(self) -> str:
        return str(self.record["phase"])


def _item_text(item: Any) -> str:
    return item if isinstance(item, str) else json.dumps(item, separators=(",", ":"))


def _item_label(item: Any) -> str:
    if isinstance(item, dict):
        return ",".join(f"{k}:{_item_text(v)}" for k, v in sorted(item.items()))
    return _item_text(item)


class Interpreter:
    """Runs one workflow. ``result`` (``_worker``'s result.json shape) is filled in place; ``write(text)`` gets it
    as JSON after every node change (under the interpreter's lock, so no thread changes it meanwhile)."""

    def __init__(self, doc: Mapping[str, Any], params: Mapping[str, Any], run_dir: Path, result: dict[str, Any],
                 write: Callable[[str], None], *, parallelism: int = 0) -> None:
        self.doc = doc
        self.spec: Mapping[str, Any] = doc.get("spec") or {}
        self.templates = {str(t["name"]): t for t in self.spec.get("templates") or [] if isinstance(t, dict)}
        meta = doc.get("metadata") or {}
        run_id = run_dir.name
        suffix = re.sub(r"[^a-z0-9]", "", run_id.lower())[:5] or "local"
        self.name = str(meta.get("name") or f"{meta.get('generateName') or 'workflow-'}{suffix}")
        self.run_dir = run_dir
        self.tasks_dir = run_dir / "tasks"
        self.result = result
        self.write = write
        self.records: list[dict[str, Any]] = result.setdefault("tasks", [])
        self.artifacts: list[dict[str, Any]] = result.setdefault("artifacts", [])
        self.metrics: list[dict[str, Any]] = result.setdefault("metrics", [])
        self.lock = threading.RLock()
        self.bin_dir = _argo_exec.shim_dir(run_dir, sys.executable)
        self.slots = threading.Semaphore(parallelism or max(2, os.cpu_count() or 2))
        self.workflow: dict[str, str] = {"workflow.name": self.name, "workflow.uid": run_id,
                                         "workflow.namespace": str(meta.get("namespace") or "kubeflow"),
                                         "workflow.serviceAccountName": str(self.spec.get("serviceAccountName", "")),
                                         "workflow.creationTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                     time.gmtime())}
        declared = {str(p["name"]): p for p in (self.spec.get("arguments") or {}).get("parameters") or []}
        values = {name: str(p.get("value", "")) for name, p in declared.items()}
        for name, value in params.items():
            values[str(name)] = value if isinstance(value, str) else json.dumps(value)
        self.arguments = values
        for name, value in values.items():
            self.workflow[f"workflow.parameters.{name}"] = value

    # ------------------------------------------------------------------------------------------ records
    def flush(self) -> None:
        with self.lock:
            self.write(json.dumps(self.result, default=str))

    def _node(self, *, node_name: str, display: str, template: str, kind: str, parent: dict[str, Any] | None,
              boundary: str, phase: str = "Running", message: str = "") -> dict[str, Any]:
        node_id = self.name if node_name == self.name else f"{self.name}-{fnv32a(node_name)}"
        record: dict[str, Any] = {
            "name": display, "state": _PHASE_STATE.get(phase, "RUNNING"), "start": time.time(), "end": None,
            "error": "", "node_id": node_id, "node_name": node_name, "display_name": display, "type": kind,
            "phase": phase, "message": message, "template": template,
            "parent_id": parent["node_id"] if parent else "", "children": [], "boundary_id": boundary,
            "arguments": {}, "outputs": {}, "argo": {"inputs": {}, "outputs": {}},
        }
        record["state_history"] = [{"update_time": record["start"], "state": record["state"]}]
        if kind == "Pod":
            record["pod_name"] = node_id
        if phase in _DONE:
            record["end"] = record["start"]
        with self.lock:
            self.records.append(record)
            if parent is not None:
                parent["children"].append(node_id)
        self.flush()
        return record

    def _finish(self, record: dict[str, Any], phase: str, message: str = "") -> None:
        with self.lock:
            record.update(phase=phase, state=_PHASE_STATE[phase], end=time.time(), message=message)
            record["state_history"].append({"update_time": record["end"], "state": record["state"]})
            if phase in ("Failed", "Error"):
                record["error"] = message
        self.flush()

    # ---------------------------------------------------------------------------------------------- run
    def run(self) -> tuple[bool, str]:
        """Run the entrypoint, then the exit handler. Returns (succeeded, the run's error)."""
        entry = str(self.spec["entrypoint"])
        args: dict[str, Any] = {"parameters": [{"name": k, "value": v} for k, v in self.arguments.items()]}
        try:  # workflow-level artifacts: raw data (kfp 1.8's InputArgumentPath of a pipeline parameter)
            args["artifacts_resolved"] = {
                str(a["name"]): substitute(str((a.get("raw") or {}).get("data", "")), self.workflow)
                for a in (self.spec.get("arguments") or {}).get("artifacts") or [] if "raw" in a}
        except WorkflowError as exc:
            return False, f"the workflow's arguments: {exc}"
        root = self.run_template(entry, node_name=self.name, display=self.name, parent=None, boundary="",
                                 arguments=args, scope={})
        ok = root.phase == "Succeeded"
        error = "" if ok else self._first_failure(root.record)
        exit_template = self.spec.get("onExit")
        if exit_template:
            status = "Succeeded" if ok else "Failed"
            exit_name = f"{self.name}.onExit"
            handler = self.run_template(str(exit_template), node_name=exit_name, display=exit_name, parent=None,
                                        boundary="", arguments=args,  # as Argo, the workflow's arguments
                                        scope={"workflow.status": status, "workflow.failures": "[]"})
            if handler.phase != "Succeeded" and ok:
                ok, error = False, f"exit handler: {self._first_failure(handler.record)}"
        return ok, error

    def _first_failure(self, record: dict[str, Any]) -> str:
        """The error of the first failed leaf node (a task, or a task that could not start) under ``record``:
        'task NAME failed: MESSAGE'."""
        with self.lock:
            by_id = {r["node_id"]: r for r in self.records}
        stack = [record]
        found: dict[str, Any] | None = None
        while stack:
            node = stack.pop(0)
            if node["phase"] in ("Failed", "Error") and not node["children"]:
                if found is None or node["end"] < found["end"]:
                    found = node
            stack.extend(by_id[c] for c in node["children"] if c in by_id)
        if found is not None:
            return f"task {found['display_name']} failed: {found['message']}"
        return str(record.get("message") or f"{record['display_name']} failed")

    def run_template(self, name: str, *, node_name: str, display: str, parent: dict[str, Any] | None,
                     boundary: str, arguments: Mapping[str, Any], scope: Mapping[str, str]) -> Node:
        template = self.templates.get(name)
        kind = "DAG" if template is not None and "dag" in template else "Pod"
        record = self._node(node_name=node_name, display=display, template=name, kind=kind, parent=parent,
                            boundary=boundary)
        node = Node(record)
        if template is None:
            self._finish(record, "Error", f"template {name!r} is not in the workflow")
            return node
        try:
            params, arts = self._inputs(template, arguments)
        except WorkflowError as exc:
            self._finish(record, "Error", str(exc))
            return node
        with self.lock:
            record["arguments"] = dict(params)
            record["argo"]["inputs"] = {"parameters": [{"name": k, "value": v} for k, v in params.items()],
                                        "artifacts": [{"name": k, "path": str(v)} for k, v in arts.items()
                                                      if isinstance(v, Path)]}
        local = dict(self.workflow)
        local.update(scope)
        local.update({f"inputs.parameters.{k}": v for k, v in params.items()})
        if kind == "DAG":
            self._run_dag(template, node, local, arts)
        else:
            self._run_pod(template, node, local, arts)
        return node

    def _inputs(self, template: Mapping[str, Any], arguments: Mapping[str, Any]) -> tuple[dict[str, str],
                                                                                          dict[str, Path | str]]:
        given = {str(p["name"]): p for p in arguments.get("parameters") or []}
        params: dict[str, str] = {}
        for p in (template.get("inputs") or {}).get("parameters") or []:
            pname = str(p["name"])
            if pname in given and "value" in given[pname]:
                params[pname] = str(given[pname]["value"])
            elif "value" in p:
                params[pname] = str(p["value"])
            elif "default" in p:
                params[pname] = str(p["default"])
            else:
                raise WorkflowError(f"input parameter {pname} of template {template['name']} has no value")
        given_arts = arguments.get("artifacts_resolved") or {}
        arts: dict[str, Path | str] = {}
        for a in (template.get("inputs") or {}).get("artifacts") or []:
            aname = str(a["name"])
            if aname in given_arts:
                arts[aname] = given_arts[aname]
        return params, arts

    # ---------------------------------------------------------------------------------------------- pod
    def _run_pod(self, template: Mapping[str, Any], node: Node, scope: dict[str, str],
                 arts: dict[str, Path | str]) -> None:
        record = node.record
        reason = _argo_exec.unsupported(template)
        if reason:
            return self._finish(record, "Error", f"cannot run locally: {reason}")
        task_dir = self.tasks_dir / record["node_id"]
        task_dir.mkdir(parents=True, exist_ok=True)
        log_path = task_dir / "log.txt"
        with self.lock:
            record["log"] = str(log_path)
        scope = dict(scope, **{"pod.name": record["node_id"]})
        for a in (template.get("inputs") or {}).get("artifacts") or []:
            scope[f"inputs.artifacts.{a['name']}.path"] = str(a.get("path", ""))
        outputs = template.get("outputs") or {}
        for p in outputs.get("parameters") or []:
            if (p.get("valueFrom") or {}).get("path"):
                scope[f"outputs.parameters.{p['name']}.path"] = str(p["valueFrom"]["path"])
        for a in outputs.get("artifacts") or []:
            scope[f"outputs.artifacts.{a['name']}.path"] = str(a.get("path", ""))
        retry = template.get("retryStrategy") or {}
        try:
            attempts = 1 + max(0, int(str(retry.get("limit", 0))))
        except ValueError:
            attempts = 1
        deadline = template.get("activeDeadlineSeconds")
        timeout = float(str(deadline)) if deadline not in (None, "") else None
        outcome = _argo_exec.Outcome(False, "not run")
        for attempt in range(attempts):
            try:
                outcome = _argo_exec.run_container(
                    template, task_dir=task_dir, inputs=arts, substitute=lambda t: substitute(t, scope),
                    bin_dir=self.bin_dir, log_path=log_path, slots=self.slots, timeout=timeout)
            except WorkflowError as exc:
                outcome = _argo_exec.Outcome(False, str(exc))
            self._echo(record, log_path, attempt)
            if outcome.ok or outcome.exit_code is None:
                break
        if not outcome.ok:
            return self._finish(record, "Failed", outcome.error)
        node.parameters, node.artifacts = outcome.parameters, outcome.artifacts
        with self.lock:
            record["outputs"] = dict(outcome.parameters)
            record["argo"]["outputs"] = {
                "parameters": [{"name": k, "value": v} for k, v in outcome.parameters.items()],
                "artifacts": [{"name": k, "path": str(v)} for k, v in outcome.artifacts.items()]}
        self._describe(record, outcome)
        self._finish(record, "Succeeded")

    def _echo(self, record: dict[str, Any], log_path: Path, attempt: int) -> None:
        """The task's output into the run's log (the worker's stdout), under a header."""
        try:
            text = log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        with self.lock:
            again = f" (retry {attempt})" if attempt else ""
            sys.stdout.write(f"---- {record['display_name']} [{record['node_id']}]{again}\n{text}")
            if text and not text.endswith("\n"):
                sys.stdout.write("\n")
            sys.stdout.flush()

    def _describe(self, record: dict[str, Any], outcome: _argo_exec.Outcome) -> None:
        """Output artifacts for the store (ML Metadata, the gate): ``mlpipeline-metrics`` as system.Metrics."""
        task = str(record["display_name"])
        found: list[dict[str, Any]] = []
        for name, path in outcome.artifacts.items():
            metadata: dict[str, Any] = {}
            kind = "system.Artifact"
            if name == "mlpipeline-metrics" or name.endswith("-mlpipeline-metrics"):
                kind = "system.Metrics"
                try:
                    data = json.loads(path.read_text(encoding="utf-8"))
                    for m in data.get("metrics") or []:
                        value = m.get("numberValue") if isinstance(m, dict) else None
                        if isinstance(value, (int, float)) and not isinstance(value, bool) and "name" in m:
                            metadata[str(m["name"])] = value
                            self._metric(record, str(m["name"]), float(value), m.get("format"))
                except (OSError, ValueError, AttributeError):
                    pass
            found.append({"task": task, "name": name, "type": kind, "uri": path.as_uri(), "metadata": metadata,
                          "parameters": dict(outcome.parameters)})
        if outcome.parameters and not found:
            found.append({"task": task, "name": "", "type": "", "uri": "", "metadata": {},
                          "parameters": dict(outcome.parameters)})
        with self.lock:
            self.artifacts.extend(found)

    def _metric(self, record: dict[str, Any], name: str, value: float, fmt: Any) -> None:
        """A run metric as KFP 1.x's persistence agent reports ``mlpipeline-metrics`` (at most 50 per node, names
        as its API accepts them)."""
        if not _METRIC_NAME.fullmatch(name):
            return
        with self.lock:
            if sum(1 for m in self.metrics if m["node_id"] == record["node_id"]) >= 50:
                return
            entry: dict[str, Any] = {"name": name, "node_id": record["node_id"], "number_value": value}
            if str(fmt or "").upper() in ("RAW", "PERCENTAGE"):
                entry["format"] = str(fmt).upper()
            self.metrics.append(entry)

    # ---------------------------------------------------------------------------------------------- dag
    def _run_dag(self, template: Mapping[str, Any], node: Node, scope: dict[str, str],
                 arts: dict[str, Path | str]) -> None:
        record = node.record
        dag = template.get("dag") or {}
        tasks = {str(t["name"]): t for t in dag.get("tasks") or []}
        fail_fast = dag.get("failFast", True) is not False
        done: dict[str, Node] = {}
        running: dict[str, threading.Thread] = {}
        changed = threading.Condition()
        failed = False

        for tname, task in tasks.items():
            for dep in _dependencies(task):
                if dep not in tasks:
                    return self._finish(record, "Error", f"task {tname} depends on {dep!r}, which is not a task "
                                                         f"of {template['name']}")
            if task.get("depends"):
                return self._finish(record, "Error", f"task {tname} uses 'depends'; the local runner reads "
                                                     "'dependencies' (as kfp 1.8 compiles)")

        def launch(tname: str) -> None:
            def body() -> None:
                try:
                    result = self._run_task(tasks[tname], node, scope, arts, done)
                except Exception as exc:  # an interpreter bug must not hang the DAG
                    traceback.print_exc()
                    result = Node(self._node(node_name=f"{record['node_name']}.{tname}", display=tname,
                                             template=str(tasks[tname].get("template", "")), kind="Pod",
                                             parent=record, boundary=record["node_id"], phase="Error",
                                             message=f"internal error of the local runner: {exc}"))
                with changed:
                    done[tname] = result
                    running.pop(tname, None)
                    changed.notify_all()
            thread = threading.Thread(target=body, name=f"argo-{tname}", daemon=True)
            running[tname] = thread
            thread.start()

        with changed:
            while True:
                failed = any(n.phase in ("Failed", "Error") for n in done.values())
                for tname, task in tasks.items():
                    if tname in done or tname in running:
                        continue
                    deps = _dependencies(task)
                    if not all(d in done for d in deps):
                        continue
                    if failed and fail_fast:
                        continue
                    bad = [d for d in deps if done[d].phase not in ("Succeeded", "Skipped", "Omitted")]
                    if bad:
                        done[tname] = Node(self._node(
                            node_name=f"{record['node_name']}.{tname}", display=tname,
                            template=str(task.get("template", "")), kind="Skipped", parent=record,
                            boundary=record["node_id"], phase="Omitted",
                            message=f"omitted: depends on {', '.join(bad)}, which did not succeed"))
                        continue
                    launch(tname)
                if not running:
                    break
                changed.wait()
        failures = [n for n in done.values() if n.phase in ("Failed", "Error")]
        if failures:
            names = ", ".join(sorted(str(n.record["display_name"]) for n in failures))
            return self._finish(record, "Failed", f"child {names} failed")
        self._finish(record, "Succeeded")

    def _run_task(self, task: Mapping[str, Any], parent: Node, scope: dict[str, str],
                  arts: dict[str, Path | str], done: Mapping[str, Node]) -> Node:
        record = parent.record
        tname = str(task["name"])
        node_name = f"{record['node_name']}.{tname}"
        local = dict(scope)
        for other, result in done.items():
            local[f"tasks.{other}.status"] = result.phase
            for k, v in result.parameters.items():
                local[f"tasks.{other}.outputs.parameters.{k}"] = v
        try:
            items = self._items(task, local)
        except WorkflowError as exc:
            return Node(self._node(node_name=node_name, display=tname, template=str(task.get("template", "")),
                                   kind="Skipped", parent=record, boundary=record["node_id"], phase="Error",
                                   message=str(exc)))
        if items is None:
            return self._one(task, node_name, tname, record, record["node_id"], local, arts, done)
        group = self._node(node_name=node_name, display=tname, template=str(task.get("template", "")),
                           kind="TaskGroup", parent=record, boundary=record["node_id"])
        results: list[Node] = []
        threads = []
        for index, item in enumerate(items):
            item_scope = dict(local, item=_item_text(item))
            if isinstance(item, dict):
                item_scope.update({f"item.{k}": _item_text(v) for k, v in item.items()})
            label = f"{tname}({index}:{_item_label(item)})"

            def body(label: str = label, item_scope: dict[str, str] = item_scope) -> None:
                results.append(self._one(task, f"{record['node_name']}.{label}", label, group, record["node_id"],
                                         item_scope, arts, done))
            thread = threading.Thread(target=body, name=f"argo-{label}", daemon=True)
            threads.append(thread)
            thread.start()
        for thread in threads:
            thread.join()
        node = Node(group)
        bad = [r for r in results if r.phase in ("Failed", "Error")]
        if bad:
            self._finish(group, "Failed", f"child {', '.join(str(b.record['display_name']) for b in bad)} failed")
        else:
            self._finish(group, "Succeeded")
        return node

    def _items(self, task: Mapping[str, Any], scope: Mapping[str, str]) -> list[Any] | None:
        if "withItems" in task:
            items = task["withItems"]
            if not isinstance(items, list):
                raise WorkflowError(f"task {task['name']}: withItems is not a list")
            return [substitute(i, scope) if isinstance(i, str) else i for i in items]
        if "withParam" in task:
            text = substitute(str(task["withParam"]), scope)
            try:
                items = json.loads(text)
            except ValueError:
                raise WorkflowError(f"task {task['name']}: withParam {text[:200]!r} is not a JSON list") from None
            if not isinstance(items, list):
                raise WorkflowError(f"task {task['name']}: withParam {text[:200]!r} is not a JSON list")
            return items
        if "withSequence" in task:
            raise WorkflowError(f"task {task['name']} uses withSequence; the local runner supports withItems and "
                                "withParam (dsl.ParallelFor)")
        return None

    def _one(self, task: Mapping[str, Any], node_name: str, display: str, parent: dict[str, Any], boundary: str,
             scope: dict[str, str], arts: dict[str, Path | str], done: Mapping[str, Node]) -> Node:
        template = str(task.get("template", ""))
        try:
            when = task.get("when")
            if when and not evaluate(substitute(str(when), scope)):
                return Node(self._node(node_name=node_name, display=display, template=template, kind="Skipped",
                                       parent=parent, boundary=boundary, phase="Skipped",
                                       message=f"when '{substitute(str(when), scope)}' evaluated false"))
            arguments = task.get("arguments") or {}
            params = [{"name": p["name"], "value": substitute(str(p.get("value", "")), scope)}
                      for p in arguments.get("parameters") or []]
            resolved: dict[str, Path | str] = {}
            for a in arguments.get("artifacts") or []:
                resolved[str(a["name"])] = self._artifact(a, arts, done, scope)
        except WorkflowError as exc:
            return Node(self._node(node_name=node_name, display=display, template=template, kind="Skipped",
                                   parent=parent, boundary=boundary, phase="Error", message=str(exc)))
        return self.run_template(template, node_name=node_name, display=display, parent=parent, boundary=boundary,
                                 arguments={"parameters": params, "artifacts_resolved": resolved},
                                 scope={k: v for k, v in scope.items() if k.startswith("workflow.")})

    def _artifact(self, arg: Mapping[str, Any], arts: Mapping[str, Path | str], done: Mapping[str, Node],
                  scope: Mapping[str, str]) -> Path | str:
        if "raw" in arg:
            return substitute(str((arg.get("raw") or {}).get("data", "")), scope)
        source = str(arg.get("from", ""))
        m = _REF.fullmatch(source.strip())
        ref = m.group(1) if m else ""
        parts = ref.split(".")
        if len(parts) >= 3 and parts[0] == "inputs" and parts[1] == "artifacts":
            name = ".".join(parts[2:])
            if name in arts:
                return arts[name]
        elif len(parts) >= 5 and parts[0] == "tasks" and parts[2:4] == ["outputs", "artifacts"]:
            task, name = parts[1], ".".join(parts[4:])
            if task in done and name in done[task].artifacts:
                return done[task].artifacts[name]
        raise WorkflowError(f"artifact {arg.get('name')}: cannot resolve {source or 'an empty source'!r}")


def _dependencies(task: Mapping[str, Any]) -> list[str]:
    return [str(d) for d in task.get("dependencies") or []]


# --------------------------------------------------------------------------------------------- worker
def main(run_dir: Path) -> int:
    result: dict[str, Any] = {"ok": False, "error": "", "tasks": [], "artifacts": [], "metrics": []}

    def write(text: str) -> None:
        tmp = run_dir / "result.json.tmp"
        tmp.write_text(text)
        tmp.replace(run_dir / "result.json")
    interpreter: Interpreter | None = None
    try:
        from kfp_ci._yaml import load_docs

        params = json.loads((run_dir / "params.json").read_text())
        doc = next(iter(load_docs((run_dir / "pipeline.yaml").read_bytes())))
        reason = problem(doc)
        if reason:
            raise WorkflowError(reason)
        interpreter = Interpreter(doc, params, run_dir, result, write)
        ok, error = interpreter.run()
        with interpreter.lock:
            result.update(ok=ok, error=error)
    except BaseException as exc:  # everything becomes the run's error
        traceback.print_exc()
        message = " ".join(str(exc).split()) or type(exc).__name__
        result["error"] = message if isinstance(exc, WorkflowError) else f"{type(exc).__name__}: {message}"
    if interpreter is not None:
        interpreter.flush()
    else:
        write(json.dumps(result, default=str))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    if len(sys.argv) > 2:
        from kfp_ci.local._worker import watch_lifeline

        watch_lifeline(int(sys.argv[2]))
    sys.exit(main(Path(sys.argv[1]).resolve()))
