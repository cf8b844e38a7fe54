"""What ``kfp-ci compile`` produces: one :class:`CompileResult` per pipeline, in a :class:`CompileReport`.

These types sit below the compiler driver (``_driver``) and the report renderers (``_report``), which both use them,
with the two file operations every producer of a compiled file shares (kfp pipelines and build commands).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kfp_ci.errors import UsageError

__all__ = ["CompileReport", "CompileResult", "PipelineError", "Status", "read_output", "write_output"]

Status = Literal["written", "unchanged", "fresh", "stale", "sdk-mismatch", "missing", "failed"]


@dataclass(frozen=True, slots=True)
class PipelineError:
    """Why a pipeline did not compile: kfp's message, where in the user's code, and a migration hint."""

    message: str
    file: Path | None = None
    line: int | None = None
    hint: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}: " if self.file and self.line else (f"{self.file}: " if self.file else "")
        return f"{where}{self.message}" + (f" (hint: {self.hint})" if self.hint else "")


@dataclass(frozen=True, slots=True)
class CompileResult:
    """One pipeline: where it came from, where its YAML is (or would be), and how it went."""

    pipeline_name: str | None
    source: Path
    function: str
    output: Path | None
    ok: bool
    status: Status
    error: PipelineError | None = None
    sdk_version: str | None = None
    cached: bool = False
    diff: str | None = None
    committed_sdk_version: str | None = None
    """With ``--check``: the kfp version the committed file says compiled it."""


@dataclass(frozen=True, slots=True)
class CompileReport:
    results: tuple[CompileResult, ...]
    sdk_version: str | None
    check: bool = False
    elapsed: float = 0.0
    root: Path | None = None
    """The repository root the JSON report's and the annotations' paths are relative to."""

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failed(self) -> tuple[CompileResult, ...]:
        return tuple(r for r in self.results if not r.ok)


def read_output(output: Path) -> bytes | None:
    """The compiled file on disk (None when there is none yet); one line naming it when it cannot be read."""
    try:
        return output.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(f"cannot read {output}: {exc.strerror}") from None


def write_output(output: Path, data: bytes) -> None:
    """Replace the compiled file atomically (a temp file beside it, then a rename): never half a file."""
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(f".{output.name}.kfp-ci-tmp")
        tmp.write_bytes(data)
        os.replace(tmp, output)
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror}") from None
