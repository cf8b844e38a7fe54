"""Worker process for one run: ``python -m kfp_ci.local._worker RUN_DIR``.

Reads ``RUN_DIR/pipeline.yaml`` (compiled IR) and ``RUN_DIR/params.json``, runs the pipeline with
``kfp.local`` and ``SubprocessRunner(use_venv=False)``, and writes ``RUN_DIR/result.json``:
``{"ok": bool, "error": str, "tasks": [{name, state, start, end, error}], "artifacts": [...]}``.
Started in its own session so the server can kill it and every task process it spawned at once. The optional
second argument is the read end of the server's lifeline pipe: when it closes (the server died, even by SIGKILL),
the worker kills its own process group, so no task goes on running for a server that is gone.
"""

from __future__ import annotations

import json
import sys
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


def main(run_dir: Path) -> int:
    tasks: list[dict[str, Any]] = []
    artifacts: list[dict[str, Any]] = []
    result: dict[str, Any] = {"ok": False, "error": "", "tasks": tasks, "artifacts": artifacts}
    try:
        params = json.loads((run_dir / "params.json").read_text())
        from kfp import components, local
        from kfp.local import status, task_dispatcher

        original = task_dispatcher.run_single_task_implementation

        def recorded(*args: Any, **kwargs: Any) -> Any:
            component = str(kwargs.get("component_name", args[1] if len(args) > 1 else "task"))
            name = component[5:] if component.startswith("comp-") else component
            entry: dict[str, Any] = {"name": name, "state": "RUNNING", "start": time.time(), "end": None, "error": "",
                                     "arguments": _plain(kwargs.get("arguments"))}
            tasks.append(entry)
            _flush(run_dir, result)
            try:
                outputs, task_status = original(*args, **kwargs)
            except BaseException as exc:
                entry.update(state="FAILED", end=time.time(), error=str(exc))
                _flush(run_dir, result)
                raise
            ok = task_status == status.Status.SUCCESS
            entry.update(state="SUCCEEDED" if ok else "FAILED", end=time.time(),
                         error="" if ok else f"task {name} failed")
            if ok:
                artifacts.extend(_describe(name, dict(outputs or {})))
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
        message = " ".join(str(exc).split()) or type(exc).__name__
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
