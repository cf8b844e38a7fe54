"""Helpers for the compile tests: run ``kfp-ci`` in a directory, and the real ``kfp dsl compile``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from kfp_ci.cli import main

HERE = Path(__file__).parent
REPO = HERE.parent.parent
KFP = Path(sys.executable).with_name("kfp")


@contextmanager
def chdir(path: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def kfp_ci(args: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> Result:
    """``kfp-ci ARGS`` in ``cwd`` through click's CliRunner (stdout and stderr kept apart)."""
    base = {"GITHUB_ACTIONS": "", "GITHUB_WORKSPACE": "", "KFP_CI_PYTHON": "",
            "KFP_DISABLE_EXECUTION_CACHING_BY_DEFAULT": ""}
    with chdir(cwd):
        return CliRunner().invoke(main, list(args), env={**base, **(env or {})}, catch_exceptions=False)


def as_json(result: Result) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def by_function(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["function"]: r for r in report["results"]}


def copy_tree(name: str, dest: Path) -> Path:
    target = dest / name
    shutil.copytree(HERE / name, target)
    return target


def kfp_dsl_compile(jobs: Sequence[tuple[Path, str, Path, Sequence[str]]], cwd: Path) -> None:
    """Run the real ``kfp dsl compile --py F --function FN --output OUT [extra]`` for each job, 2 at a time."""
    pending = list(jobs)
    while pending:
        batch, pending = pending[:2], pending[2:]
        procs = [
            subprocess.Popen([str(KFP), "dsl", "compile", "--py", str(py), "--function", fn, "--output", str(out),
                              *extra], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for py, fn, out, extra in batch
        ]
        for proc in procs:
            output, _ = proc.communicate(timeout=120)
            assert proc.returncode == 0, output.decode()
