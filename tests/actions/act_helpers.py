"""Helpers the act tests share (a uniquely named module, so tests never import ``conftest``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PIPELINE_SOURCE = '''
from kfp import dsl


@dsl.component(base_image="python:3.11-slim")
def make_rows(rows: int) -> int:
    return rows * 2


@dsl.component(base_image="python:3.11-slim")
def report(total: int) -> str:
    return f"total={total}"


@dsl.pipeline(name="hello-ci")
def hello_pipeline(rows: int = 3):
    first = make_rows(rows=rows)
    report(total=first.output)
'''



def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "ci", "GIT_AUTHOR_EMAIL": "ci@example.com",
                        "GIT_COMMITTER_NAME": "ci", "GIT_COMMITTER_EMAIL": "ci@example.com"})


def compile_pipeline(source: Path, output: Path) -> None:
    """Compile with the real kfp compiler in a subprocess (the module is a fresh import each time)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    code = ("import importlib.util,sys; s=importlib.util.spec_from_file_location('p', sys.argv[1]); "
            "m=importlib.util.module_from_spec(s); s.loader.exec_module(m); "
            "from kfp import compiler; compiler.Compiler().compile(m.hello_pipeline, sys.argv[2])")
    subprocess.run([sys.executable, "-c", code, str(source), str(output)], check=True, capture_output=True)
