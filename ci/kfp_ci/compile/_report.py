"""Migration hints for compile errors, and the text / github / json reports of ``kfp-ci compile``."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from kfp_ci import _console
from kfp_ci.compile._results import CompileReport, CompileResult
from kfp_ci.github import annotation

__all__ = ["hint_for", "render"]

_GUIDE = "see https://www.kubeflow.org/docs/components/pipelines/user-guides/migration/"

_HINTS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"No module named '?kfp\.kubernetes'?|cannot import name '?kubernetes'? from '?kfp'?"),
     "kfp.kubernetes is a separate package: pip install kfp-kubernetes (the version that matches your kfp)"),
    (re.compile(r"Missing type annotation for argument"),
     "kfp 2 needs a type annotation on every pipeline and component parameter (kfp 1.8 allowed untyped ones): "
     "write e.g. `def my_pipeline(rows: int = 100, name: str = 'x')`"),
    (re.compile(r"must be instantiated using keyword arguments|Positional parameters are not allowed"),
     "kfp 2 components take keyword arguments only: call `train(data=..., epochs=3)`, not `train(x, 3)`"),
    (re.compile(r"add_node_selector_constraint\(\) takes"),
     "in kfp 2 task.add_node_selector_constraint(accelerator) takes only the accelerator type; for a node "
     "label use kfp-kubernetes: kubernetes.add_node_selector(task, label_key=..., label_value=...)"),
    (re.compile(r"ContainerOp"),
     "dsl.ContainerOp was removed in kfp 2: use a @dsl.container_component returning dsl.ContainerSpec, "
     "or a @dsl.component"),
    (re.compile(r"VolumeOp|PipelineVolume|VolumeSnapshotOp"),
     "dsl.VolumeOp was removed in kfp 2: create and mount volumes with kfp-kubernetes "
     "(kubernetes.CreatePVC, kubernetes.mount_pvc, kubernetes.DeletePVC)"),
    (re.compile(r"RUN_ID_PLACEHOLDER"),
     "dsl.RUN_ID_PLACEHOLDER is dsl.PIPELINE_JOB_ID_PLACEHOLDER in kfp 2"),
    (re.compile(r"EXECUTION_ID_PLACEHOLDER"),
     "dsl.EXECUTION_ID_PLACEHOLDER is dsl.PIPELINE_TASK_ID_PLACEHOLDER in kfp 2"),
    (re.compile(r"create_component_from_func|func_to_container_op|func_to_component_text"),
     "kfp 2 replaced create_component_from_func / func_to_container_op with the @dsl.component decorator"),
    (re.compile(r"kfp\.v2"),
     "kfp.v2 is gone in kfp 2: import from kfp and kfp.dsl directly (from kfp import dsl, compiler)"),
    (re.compile(r"InputPath|OutputPath|InputBinaryFile|OutputBinaryFile"),
     "in kfp 2 use dsl.InputPath / dsl.OutputPath, or artifacts: Input[Dataset] / Output[Model]"),
    (re.compile(r"(cannot import name|No module named) '?kfp[\w.]*'?|has no attribute .*(kfp|dsl)"),
     "this is a kfp 1.x (dsl-compile era) API that kfp 2 removed or renamed; " + _GUIDE),
]


def hint_for(message: str, sdk_major: int) -> str | None:
    """A migration hint for the frequent kfp v1 -> v2 errors, when the SDK compiling is kfp 2."""
    if sdk_major < 2:
        return None
    for pattern, hint in _HINTS:
        if pattern.search(message):
            return hint
    return None


def _rel(path: Path | None) -> str:
    if path is None:
        return "?"
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith(".." + os.sep + "..") else rel


def _where(result: CompileResult) -> str:
    error = result.error
    if error is None:
        return _rel(result.source)
    return f"{_rel(error.file)}:{error.line}" if error.line else _rel(error.file)


def _line(result: CompileResult) -> str:
    tag = f"kfp {result.sdk_version}" if result.sdk_version else ("build command" if result.function == "build"
                                                                   else "kfp ?")
    name = result.pipeline_name or result.function
    if result.ok:
        extra = " (cached)" if result.cached else ""
        verb = {"fresh": "up to date", "unchanged": "unchanged", "written": "wrote"}.get(result.status, result.status)
        where = f"{_rel(result.source)}:{result.function}"
        return f"ok      {name}  {where} -> {_rel(result.output)}  [{verb}{extra}, {tag}]"
    assert result.error is not None
    return f"FAILED  {name}  {_where(result)}: {result.error.message}  [{tag}]"


def _summary(report: CompileReport) -> str:
    failed = sum(not r.ok for r in report.results)
    cached = sum(r.ok and r.cached for r in report.results)
    compiled = sum(r.ok and not r.cached for r in report.results)
    verb = "checked" if report.check else "compiled"
    sdk = f", kfp {report.sdk_version}" if report.sdk_version else ""
    return (f"{verb} {len(report.results)} pipeline(s): {compiled} compiled, {cached} from cache, "
            f"{failed} failed in {report.elapsed:.2f} s{sdk}")


def _from_root(path: Path | None, root: Path | None) -> str | None:
    """``path`` relative to the repository root (absolute when outside it)."""
    if path is None:
        return None
    if root is None:
        return str(path)
    try:
        return Path(path).resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path)


def render(report: CompileReport, fmt: str) -> None:
    if fmt == "json":
        _console.out(json.dumps(to_json(report), indent=2))
        return
    for result in report.results:
        if fmt == "github":
            _console.out(f"::group::{result.pipeline_name or result.function} ({'ok' if result.ok else 'failed'})")
        _console.out(_line(result))
        if result.error is not None:
            if result.error.hint:
                _console.out(f"        hint: {result.error.hint}")
            if result.diff:
                _console.out(result.diff.rstrip("\n"))
        if fmt == "github":
            _console.out("::endgroup::")
            if result.error is not None:
                message = result.error.message + (f" Hint: {result.error.hint}" if result.error.hint else "")
                annotation("error", message, file=_from_root(result.error.file, report.root),
                           line=result.error.line,
                           title=f"kfp-ci compile: {result.pipeline_name or result.function}", force=True)
    _console.info(_summary(report))


def to_json(report: CompileReport) -> dict[str, Any]:
    """The JSON report; every path is relative to the repository root (``root``)."""
    root = report.root
    return {
        "ok": report.ok,
        "check": report.check,
        "sdk_version": report.sdk_version,
        "elapsed": round(report.elapsed, 3),
        "root": str(root) if root else None,
        "results": [
            {
                "pipeline_name": r.pipeline_name,
                "source": _from_root(r.source, root),
                "function": r.function,
                "output": _from_root(r.output, root),
                "ok": r.ok,
                "status": r.status,
                "cached": r.cached,
                "sdk_version": r.sdk_version,
                "committed_sdk_version": r.committed_sdk_version,
                "error": None if r.error is None else {
                    "message": r.error.message,
                    "file": _from_root(r.error.file, root),
                    "line": r.error.line,
                    "hint": r.error.hint,
                },
                "diff": r.diff,
            }
            for r in report.results
        ],
    }
