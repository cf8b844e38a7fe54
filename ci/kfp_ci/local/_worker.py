"""Worker process for one run: ``python -m kfp_ci.local._worker RUN_DIR``.

Reads ``RUN_DIR/pipeline.yaml`` (compiled IR) and ``RUN_DIR/params.json``, runs the pipeline with
``kfp.local`` and ``SubprocessRunner(use_venv=False)``, and writes ``RUN_DIR/result.json``:
``{"ok": bool, "error": str, "tasks": [{name, state, start, end, error}], "artifacts": [...]}``.
Started in its own session so the server can kill it and every task process it spawned at once. The optional
second argument is the read end of the server's lifeline pipe: when it closes (the server died, even by SIGKILL),
the worker kills its own process group, so no task goes on running for a server that is gone.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any


def _describe(task: str, outputs: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {}
    for name, value in outputs.items():
        if hasattr(value, "schema_title") and hasattr(value, "uri"):
            found.append({
                "task": task, "name": name, "type": str(value.schema_title), "uri": str(value.uri),
                "metadata": dict(getattr(value, "metadata", {}) or {}),
            })
        else:
            try:
                json.dumps(value)
                params[name] = value
            except (TypeError, ValueError):
                params[name] = repr(value)
    for item in found:
        item["parameters"] = params
    if params and not found:
        found.append({"task": task, "name": "", "type": "", "uri": "", "metadata": {}, "parameters": params})
    return found


def _runnable_spec(path: Path) -> str:
    """The package's text, with the pipeline renamed when one of its components has the pipeline's name.

    KFP runs such a pipeline fine, but kfp's YAML loader (and so ``kfp.local``) picks the component named like
    the pipeline and takes it for the pipeline: ``unzip-csv() got an unexpected keyword argument``. The run's
    private copy gets a name no component has; the stored package is untouched.
    """
    import yaml

    from kfp_ci._yaml import DUMPER, LOADER

    text = path.read_text(encoding="utf-8")
    docs = list(yaml.load_all(text, Loader=LOADER))
    spec = docs[0] if docs and isinstance(docs[0], dict) else None
    if spec is None:
        return text
    name = str((spec.get("pipelineInfo") or {}).get("name", ""))
    components = spec.get("components") or {}
    if not name or not any(key == f"comp-{name}" or key.startswith(f"comp-{name}-") for key in components):
        return text
    unique = f"{name}-pipeline"
    while f"comp-{unique}" in components:
        unique += "-root"
    spec["pipelineInfo"] = {**spec["pipelineInfo"], "name": unique}
    return str(yaml.dump_all(docs, Dumper=DUMPER, sort_keys=False))


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")  # colour (CSI) and title (OSC) codes


def strip_ansi(text: str) -> str:
    """``text`` without terminal escape codes (kfp.local colours its log lines): for messages, logs and pages."""
    return _ANSI.sub("", text)


class _Tee(io.TextIOBase):
    """stdout that also keeps what each thread prints while it runs a task (kfp.local prints a task's output)."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self.local = threading.local()

    def write(self, text: str) -> int:
        buffer = getattr(self.local, "buffer", None)
        if buffer is not None:
            buffer.append(text)
        return int(self.target.write(text))

    def flush(self) -> None:
        self.target.flush()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self.target, "encoding", "utf-8"))

    def isatty(self) -> bool:
        return bool(self.target.isatty())

    def fileno(self) -> int:
        return int(self.target.fileno())


def _local_paths(run_dir: Path) -> list[str]:
    """Prefixes of paths that only mean something on this machine, longest first."""
    found = {str(run_dir), str(run_dir.parent.parent), sys.prefix, sys.base_prefix, tempfile.gettempdir(),
             os.path.expanduser("~"), os.getcwd()}
    return sorted((p.rstrip("/") + "/" for p in found if p and p != "/"), key=len, reverse=True)


def readable(text: str, run_dir: Path) -> str:
    """Text fit for an error message: no colour codes, no server-local paths."""
    text = strip_ansi(text)
    text = re.sub(r'File "[^"]*/([^"/]+)"', r'File "\1"', text)
    for prefix in _local_paths(run_dir):
        text = text.replace(prefix, "")
    return text.strip()


def exception_of(output: str, run_dir: Path) -> str:
    """The last lines of the last traceback in a task's output: its innermost frame and the exception."""
    lines = strip_ansi(output).splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == "Traceback (most recent call last):"]
    if not starts:
        return ""
    indent = len(lines[starts[-1]]) - len(lines[starts[-1]].lstrip())
    body = [line[indent:] if line[:indent].isspace() or not line[:indent] else line for line in lines[starts[-1] + 1:]]
    frame: list[str] = []
    exception: list[str] = []
    for line in body:
        if line.startswith("  File "):
            frame, exception = [line.strip()], []
        elif exception or (line and not line.startswith(" ")):
            if not line.strip():
                break
            exception.append(line.rstrip())
        elif line.strip() and frame and len(frame) < 2 and not set(line.strip()) <= set("^~ "):
            frame.append("    " + line.strip())
    return readable("\n".join(frame + exception), run_dir)


def main(run_dir: Path) -> int:
    tasks: list[dict[str, Any]] = []
    artifacts: list[dict[str, Any]] = []
    result: dict[str, Any] = {"ok": False, "error": "", "tasks": tasks, "artifacts": artifacts}
    try:
        params = json.loads((run_dir / "params.json").read_text())
        from kfp import components, local
        from kfp.local import status, task_dispatcher

        original = task_dispatcher.run_single_task_implementation
        tee = _Tee(sys.stdout)
        sys.stdout = tee
        current = threading.local()  # the pipeline's name for the task being run (kfp.local passes the component's)
        try:
            from kfp.local.orchestrator import task_executor

            original_task = task_executor.execute_single_task

            def named(*args: Any, **kwargs: Any) -> Any:
                current.name = str(kwargs.get("task_name", args[0] if args else ""))
                try:
                    return original_task(*args, **kwargs)
                finally:
                    current.name = ""
            task_executor.execute_single_task = named
        except (ImportError, AttributeError):  # an older kfp: tasks are named after their components
            pass

        def recorded(*args: Any, **kwargs: Any) -> Any:
            component = str(kwargs.get("component_name", args[1] if len(args) > 1 else "task"))
            name = getattr(current, "name", "") or (component[5:] if component.startswith("comp-") else component)
            entry: dict[str, Any] = {"name": name, "component": component, "state": "RUNNING", "start": time.time(),
                                     "end": None, "error": "", "arguments": _plain(kwargs.get("arguments"))}
            tasks.append(entry)
            _flush(run_dir, result)
            tee.local.buffer = []
            try:
                outputs, task_status = original(*args, **kwargs)
            except BaseException as exc:
                entry.update(state="FAILED", end=time.time(),
                             error=exception_of("".join(tee.local.buffer), run_dir) or readable(str(exc), run_dir))
                artifacts.append({"task": name, "name": "", "type": "", "uri": "", "metadata": {}, "parameters": {}})
                _flush(run_dir, result)
                raise
            finally:
                printed, tee.local.buffer = "".join(tee.local.buffer), None
            ok = task_status == status.Status.SUCCESS
            entry.update(state="SUCCEEDED" if ok else "FAILED", end=time.time(),
                         error="" if ok else exception_of(printed, run_dir) or f"task {name} failed")
            described = _describe(name, dict(outputs or {})) if ok else []
            # every task that ran is an execution in ML Metadata, with its outputs or none
            artifacts.extend(described or [{"task": name, "name": "", "type": "", "uri": "", "metadata": {},
                                            "parameters": {}}])
            if ok:
                entry["outputs"] = _plain(dict(outputs or {}))
            _flush(run_dir, result)
            return outputs, task_status

        task_dispatcher.run_single_task_implementation = recorded
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(run_dir / "outputs"),
                   raise_on_error=True)
        pipeline = components.load_component_from_text(_runnable_spec(run_dir / "pipeline.yaml"))
        pipeline(**params)
        result["ok"] = True
    except BaseException as exc:  # everything becomes the run's error
        traceback.print_exc()
        failed = next((t for t in tasks if t.get("state") == "FAILED" and t.get("error")), None)
        if failed is not None:  # the component's own exception, as KFP shows the failed node's
            result["error"] = f"task {failed['name']} failed:\n{failed['error']}"
        else:
            message = " ".join(readable(str(exc), run_dir).split()) or type(exc).__name__
            result["error"] = f"{type(exc).__name__}: {message}"
    _flush(run_dir, result)
    return 0 if result["ok"] else 1


def _plain(arguments: Any) -> dict[str, Any]:
    """A task's parameter arguments as JSON values (artifacts are listed with its outputs, not here)."""
    if not isinstance(arguments, dict):
        return {}
    return {str(k): v for k, v in arguments.items() if isinstance(v, (str, int, float, bool, list, dict, type(None)))}


_FLUSH = threading.Lock()  # kfp.local runs a ParallelFor's iterations in threads, each reporting here


def _flush(run_dir: Path, result: dict[str, Any]) -> None:
    with _FLUSH:
        tmp = run_dir / "result.json.tmp"
        tmp.write_text(json.dumps(result, default=repr))
        tmp.replace(run_dir / "result.json")


def watch_lifeline(fd: int) -> None:
    """Kill this process group once ``fd`` (the server's lifeline pipe) reads end-of-file."""
    import os
    import signal
    import threading

    def watch() -> None:
        try:
            while os.read(fd, 1):
                pass
        except OSError:
            pass
        os.killpg(os.getpgrp(), signal.SIGKILL)

    threading.Thread(target=watch, name="kfp-ci-lifeline", daemon=True).start()


if __name__ == "__main__":
    if len(sys.argv) > 2:
        watch_lifeline(int(sys.argv[2]))
    sys.exit(main(Path(sys.argv[1])))
