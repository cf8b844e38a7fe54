"""Find KFP pipeline functions by reading source files (AST), never importing them."""

from __future__ import annotations

import ast
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from kfp_ci.errors import UsageError

__all__ = ["Found", "ScanError", "discover", "scan_file"]

_SKIP_DIRS = {"__pycache__", "node_modules", "site-packages", "dist-packages"}


@dataclass(frozen=True, slots=True)
class Found:
    """A module-level pipeline function: ``source`` (absolute), ``function`` and its ``def`` line."""

    source: Path
    function: str
    line: int


@dataclass(frozen=True, slots=True)
class ScanError:
    """A file that looks like it holds pipelines but does not parse."""

    source: Path
    message: str
    line: int | None


def _is_pipeline_decorator(node: ast.expr) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    if isinstance(target, ast.Name):
        return target.id == "pipeline"
    if isinstance(target, ast.Attribute) and target.attr == "pipeline":
        base = target.value
        if isinstance(base, ast.Name):
            return base.id in ("dsl", "kfp_dsl")
        if isinstance(base, ast.Attribute):
            return base.attr == "dsl" and isinstance(base.value, ast.Name) and base.value.id == "kfp"
    return False


def scan_file(path: Path) -> list[Found] | ScanError:
    """Module-level functions decorated with ``@dsl.pipeline`` / ``@kfp.dsl.pipeline`` / ``@pipeline``."""
    source = path.resolve()
    try:
        data = source.read_bytes()
    except OSError as exc:
        return ScanError(source, f"cannot read {path}: {exc.strerror}", None)
    if b"pipeline" not in data:
        return []
    try:
        tree = ast.parse(data, filename=str(source))
    except SyntaxError as exc:
        return ScanError(source, f"SyntaxError: {exc.msg}", exc.lineno)
    except ValueError as exc:  # e.g. null bytes
        return ScanError(source, f"cannot parse: {exc}", None)
    found = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
            _is_pipeline_decorator(d) for d in node.decorator_list
        ):
            line = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            found.append(Found(source, node.name, line))
    return found


def _walk(directory: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(directory):
        root_path = Path(root)
        dirs[:] = sorted(
            d for d in dirs
            if not d.startswith(".") and d not in _SKIP_DIRS and not (root_path / d / "pyvenv.cfg").exists()
        )
        for name in sorted(files):
            if name.endswith(".py") and not name.startswith("."):
                yield root_path / name


def discover(paths: Iterable[Path]) -> tuple[list[Found], list[ScanError]]:
    """Pipelines in ``paths`` (files or directories, recursive, skipping venvs and hidden directories)."""
    found: list[Found] = []
    errors: list[ScanError] = []
    seen: set[Path] = set()
    for path in paths:
        if path.is_dir():
            if (path / "pyvenv.cfg").exists():
                continue
            files = list(_walk(path))
            explicit = False
        elif path.is_file():
            files = [path]
            explicit = True
        else:
            raise UsageError(f"{path}: no such file or directory")
        for file in files:
            resolved = file.resolve()
            if resolved in seen:
                continue
            seen.add(resolved)
            result = scan_file(file)
            if isinstance(result, ScanError):
                if explicit or "dsl" in _safe_text(resolved):
                    errors.append(result)
                continue
            found.extend(result)
    return found, errors


def _safe_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
