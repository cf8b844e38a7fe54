"""``kfp-ci compile``: parse the command's options, compile, render the report, return the exit code."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kfp_ci import _console
from kfp_ci.compile._driver import Target, compile_targets
from kfp_ci.compile._report import render
from kfp_ci.config import Settings
from kfp_ci.errors import UsageError

__all__ = ["compile_command"]


def compile_command(
    settings: Settings,
    *,
    paths: Sequence[Path | str] = (),
    function: str | None = None,
    out_dir: Path | None = None,
    layout: str | None = None,
    ignore_sdk_version: bool | None = None,
    check: bool = False,
    pipeline_parameters: str | None = None,
    disable_execution_caching_by_default: bool | None = None,
    jobs: int | None = None,
    timeout: float = 120.0,
    no_cache: bool = False,
    fmt: str | None = None,
) -> int:
    """The body of ``kfp-ci compile``; returns the exit code (0 ok, 1 failed or stale)."""
    params: dict[str, Any] | None = None
    if pipeline_parameters is not None:
        try:
            params = json.loads(pipeline_parameters)
        except ValueError as exc:
            raise UsageError(f"--pipeline-parameters is not valid JSON: {exc}") from None
        if not isinstance(params, dict):
            raise UsageError("--pipeline-parameters must be a JSON object, e.g. '{\"rows\": 10}'")
    for path in paths:
        text = str(path)
        head, sep, func = text.rpartition(":")
        if not Path(text).exists() and not (sep and func.isidentifier() and Path(head).is_file()):
            if sep and func.isidentifier() and head.endswith(".py"):
                raise UsageError(f"{head}: no such file (in {text!r}: FILE.py:FUNCTION)")
            raise UsageError(f"{text}: no such file or directory")
    targets: list[Target] = [Path(p) if isinstance(p, str) and Path(p).exists() else p for p in paths] \
        if paths else list(settings.pipelines)
    if not targets:
        raise UsageError("nothing to compile: pass files or directories, or declare [[tool.kfp-ci.pipelines]] in "
                         "pyproject.toml")
    report = compile_targets(
        targets, out_dir=out_dir, check=check, jobs=jobs, timeout=timeout, use_cache=not no_cache,
        pipeline_parameters=params, disable_caching=disable_execution_caching_by_default, function=function,
        settings=settings, layout=layout or "flat",
        ignore_sdk_version=settings.ignore_sdk_version if ignore_sdk_version is None else ignore_sdk_version,
    )
    fmt = fmt or ("github" if _console.in_github_actions() else "text")
    render(report, fmt)
    return 0 if report.ok else 1
