"""Compile KFP pipelines with the installed kfp SDK: fast, isolated, cached (``kfp-ci compile``).

The CLI process never imports kfp or the user's code. :mod:`._discover` picks the modules worth importing by
reading the sources (AST); :mod:`._cache` answers what it can from ``.kfp-ci/cache/``; :mod:`._driver` hands the
rest to :mod:`._worker`, a zygote that imports kfp once and forks one child per source module (which decides,
after importing it, which of the module's objects are kfp pipelines); :mod:`._compare` says what ``--check``
compares (content, not kfp's clock stamps or dict-default key order); :mod:`._report` renders the results
(:mod:`._results`) as text, GitHub annotations or JSON; :mod:`._command` is the command.

Library use::

    from kfp_ci.compile import compile_targets
    report = compile_targets(["pipelines/"], out_dir=Path("build"))
    for result in report.results:
        print(result.pipeline_name, result.output, result.ok, result.error)
"""

from __future__ import annotations

from kfp_ci.compile._command import compile_command
from kfp_ci.compile._driver import compile_targets
from kfp_ci.compile._results import CompileReport, CompileResult, PipelineError

__all__ = ["CompileReport", "CompileResult", "PipelineError", "compile_command", "compile_targets"]
