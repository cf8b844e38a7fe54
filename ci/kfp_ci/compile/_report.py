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
    (re.compile(r"Missing type annotation for argument"),
     "kfp 2 needs a type annotation on every pipeline and component parameter (kfp 1.8 allowed untyped ones): "
     "write e.g. `def my_pipeline(rows: int = 100, name: str = 'x')`"),
    (re.compile(r"keyword arguments|[Pp]ositional (parameters|arguments)"),
     "kfp 2 components take keyword arguments only: call `train(data=..., epochs=3)`, not `train(x, 3)`"),
    (re.compile(r"ContainerOp"),
     "dsl.ContainerOp was removed in kfp 2: use a @dsl.container_component returning dsl.ContainerSpec, "
     "or a @dsl.component"),
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
    cached = sum(r.cached for r in report.results)
    compiled = len(report.results) - cached
    verb = "checked" if report.check else "compiled"
    sdk = f", kfp {report.sdk_version}" if report.sdk_version else ""
    return (f"{verb} {len(report.results)} pipeline(s): {compiled} compiled, {cached} from cache, "
            f"{failed} failed in {report.elapsed:.2f} s{sdk}")


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
                annotation("error", message, file=_rel(result.error.file), line=result.error.line,
                           title=f"kfp-ci compile: {result.pipeline_name or result.function}", force=True)
    _console.info(_summary(report))


def to_json(report: CompileReport) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "check": report.check,
        "sdk_version": report.sdk_version,
        "elapsed": round(report.elapsed, 3),
        "results": [
            {
                "pipeline_name": r.pipeline_name,
                "source": str(r.source),
                "function": r.function,
                "output": str(r.output) if r.output else None,
                "ok": r.ok,
                "status": r.status,
                "cached": r.cached,
                "sdk_version": r.sdk_version,
                "error": None if r.error is None else {
                    "message": r.error.message,
                    "file": str(r.error.file) if r.error.file else None,
                    "line": r.error.line,
                    "hint": r.error.hint,
                },
                "diff": r.diff,
            }
            for r in report.results
        ],
    }
