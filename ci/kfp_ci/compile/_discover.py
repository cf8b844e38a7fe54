"""Find KFP pipeline functions by reading source files (AST), never importing them."""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from kfp_ci.errors import UsageError

__all__ = ["Found", "ScanError", "discover", "may_hold_pipelines", "scan_file"]

_SKIP_DIRS = {"__pycache__", "node_modules", "site-packages", "dist-packages"}


@dataclass(frozen=True, slots=True)
class Found:
    """A module-level pipeline function: ``source`` (absolute), ``function`` and its ``def`` line."""

    source: Path
    function: str
    line: int


@dataclass(frozen=True, slots=True)
class ScanError:
    """A file that looks like it holds pipelines but does not parse; ``functions``: the pipeline ``def`` names and
    lines a plain text search still finds in it."""

    source: Path
    message: str
    line: int | None
    functions: tuple[tuple[str, int], ...] = ()


_KFP_DSL_MODULES = ("kfp.dsl", "kfp.v2.dsl")


class _Names:
    """Which local names refer to kfp, to ``kfp.dsl`` and to ``kfp.dsl.pipeline`` (import aliases included)."""

    def __init__(self) -> None:
        self.kfp: set[str] = set()
        self.dsl: set[str] = set()
        self.pipeline: set[str] = set()
        self.local_imports: list[tuple[str, int, tuple[tuple[str, str], ...], int]] = []
        """``from MODULE import name as bound`` of non-kfp modules: (module, level, ((name, bound), ...), line)."""

    def visit(self, tree: ast.Module) -> None:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name == "kfp" or alias.name.startswith("kfp."):
                        if alias.asname is None:
                            self.kfp.add("kfp")
                        elif alias.name in _KFP_DSL_MODULES:
                            self.dsl.add(alias.asname)
                        elif alias.name == "kfp":
                            self.kfp.add(alias.asname)
            elif isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if node.level == 0 and module in ("kfp", "kfp.v2"):
                    for alias in node.names:
                        if alias.name == "dsl":
                            self.dsl.add(alias.asname or "dsl")
                elif node.level == 0 and module in _KFP_DSL_MODULES:
                    for alias in node.names:
                        if alias.name in ("pipeline", "*"):
                            self.pipeline.add(alias.asname or "pipeline")
                elif not (node.level == 0 and (module == "kfp" or module.startswith("kfp."))):
                    names = tuple((a.name, a.asname or a.name) for a in node.names)
                    self.local_imports.append((module, node.level, names, node.lineno))

    def is_pipeline(self, node: ast.expr) -> bool:
        """``node`` names kfp's ``pipeline`` decorator (``dsl.pipeline``, ``kfp.dsl.pipeline``, an alias)."""
        if isinstance(node, ast.Name):
            return node.id in self.pipeline
        if isinstance(node, ast.Attribute) and node.attr == "pipeline":
            base = node.value
            if isinstance(base, ast.Name):
                return base.id in self.dsl
            if isinstance(base, ast.Attribute) and base.attr == "dsl":
                inner = base.value
                if isinstance(inner, ast.Name):
                    return inner.id in self.kfp
                return (isinstance(inner, ast.Attribute) and inner.attr == "v2" and isinstance(inner.value, ast.Name)
                        and inner.value.id in self.kfp)
        return False

    def is_decorator(self, node: ast.expr) -> bool:
        return self.is_pipeline(node.func if isinstance(node, ast.Call) else node)

    def is_wrapping(self, node: ast.expr) -> bool:
        """``dsl.pipeline(...)(f)`` or ``dsl.pipeline(f)``."""
        if not isinstance(node, ast.Call) or not node.args:
            return False
        return self.is_pipeline(node.func) or (isinstance(node.func, ast.Call) and self.is_pipeline(node.func.func))


def _module_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Module-level statements, including those inside module-level ``if``/``try``/``with``/``for`` blocks."""
    for node in body:
        yield node
        if isinstance(node, (ast.If, ast.For, ast.While)):
            yield from _module_level(node.body)
            yield from _module_level(node.orelse)
        elif isinstance(node, ast.With):
            yield from _module_level(node.body)
        elif isinstance(node, ast.Try) or (hasattr(ast, "TryStar") and isinstance(node, ast.TryStar)):
            yield from _module_level(node.body)
            for handler in node.handlers:
                yield from _module_level(handler.body)
            yield from _module_level(node.orelse)
            yield from _module_level(node.finalbody)


def _parse(path: Path) -> tuple[Path, ast.Module | None, bytes] | ScanError:
    source = path.resolve()
    try:
        data = source.read_bytes()
    except OSError as exc:
        return ScanError(source, f"cannot read {path}: {exc.strerror}", None)
    if b"pipeline" not in data and b"import" not in data:
        return source, None, data  # neither defines nor imports anything: not worth parsing
    try:
        return source, ast.parse(data, filename=str(source)), data
    except SyntaxError as exc:
        return ScanError(source, f"SyntaxError: {exc.msg}", exc.lineno or 1, _pipelines_by_text(data))
    except ValueError as exc:  # e.g. null bytes
        return ScanError(source, f"cannot parse: {exc}", 1, _pipelines_by_text(data))


def _pipelines_by_text(data: bytes) -> tuple[tuple[str, int], ...]:
    """``def`` names (and their decorator's line) after a ``@...pipeline`` line, for a file that does not parse."""
    found: list[tuple[str, int]] = []
    decorator: int | None = None
    for number, raw in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        line = raw.strip()
        if re.match(r"@\s*[\w.]*pipeline\b", line):
            decorator = decorator or number
            continue
        match = re.match(r"(?:async\s+)?def\s+(\w+)", line)
        if match and decorator is not None:
            found.append((match.group(1), decorator))
        if line and not line.startswith(("@", "#")):
            decorator = None
    return tuple(found)


def _scan_tree(source: Path, tree: ast.Module) -> tuple[list[Found], _Names]:
    names = _Names()
    names.visit(tree)
    found: list[Found] = []
    for node in _module_level(tree.body):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
            names.is_decorator(d) for d in node.decorator_list
        ):
            line = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            found.append(Found(source, node.name, line))
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None and \
                names.is_wrapping(node.value):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    found.append(Found(source, target.id, node.lineno))
    return found, names


def scan_file(path: Path) -> list[Found] | ScanError:
    """Module-level kfp pipelines a source defines: functions decorated with kfp's ``pipeline`` (through any
    import alias, also inside module-level ``if``/``try`` blocks) and ``name = dsl.pipeline(...)(func)``."""
    parsed = _parse(path)
    if isinstance(parsed, ScanError):
        return parsed
    source, tree, _ = parsed
    if tree is None:
        return []
    return _scan_tree(source, tree)[0]


def _resolve(importer: Path, module: str, level: int, roots: Iterable[Path]) -> Path | None:
    """The project file ``from MODULE import ...`` in ``importer`` loads (its directory first, as kfp imports)."""
    parts = module.split(".") if module else []
    if level:
        base = importer.parent
        for _ in range(level - 1):
            base = base.parent
        bases = [base]
    else:
        bases = [importer.parent, *roots]
    for base in bases:
        candidate = base.joinpath(*parts)
        for path in (candidate.with_name(candidate.name + ".py") if parts else None, candidate / "__init__.py"):
            if path is not None and path.is_file():
                return path.resolve()
    return None


def _imported_pipelines(source: Path, names: _Names, known: dict[Path, list[Found]], roots: list[Path],
                        depth: int = 0) -> list[Found]:
    """Pipelines ``source`` imports by name (or ``*``) from project modules that define them."""
    found: list[Found] = []
    for module, level, imported, line in names.local_imports:
        target = _resolve(source, module, level, roots)
        if target is None or target == source:
            continue
        defined = known.get(target)
        if defined is None:
            defined = []
            known[target] = defined
            parsed = _parse(target)
            if not isinstance(parsed, ScanError) and parsed[1] is not None and depth < 3:
                inner, inner_names = _scan_tree(target, parsed[1])
                defined.extend(inner)
                defined.extend(_imported_pipelines(target, inner_names, known, roots, depth + 1))
        by_name = {f.function: f for f in defined}
        for name, bound in imported:
            if name == "*":
                found.extend(Found(source, f.function, line) for f in defined if not f.function.startswith("_"))
            elif name in by_name:
                found.append(Found(source, bound, line))
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


def may_hold_pipelines(path: Path) -> bool:
    """A file kfp could find a pipeline in after importing it: it defines one or imports anything at all."""
    parsed = _parse(path)
    if isinstance(parsed, ScanError) or parsed[1] is None:
        return False
    return any(isinstance(node, (ast.Import, ast.ImportFrom)) for node in ast.walk(parsed[1])) or \
        bool(_scan_tree(parsed[0], parsed[1])[0])


def discover(paths: Iterable[Path], roots: Iterable[Path] = ()) -> tuple[list[Found], list[ScanError]]:
    """Pipelines in ``paths`` (files or directories, recursive, skipping venvs and hidden directories).

    This is the fast first pass, from the sources alone: what it finds are the modules worth importing and
    hints; after importing a module the compiler decides from its objects which of them are kfp pipelines.
    A pipeline imported by name from a project module counts too (found at its ``import`` line). In a directory
    only files that mention ``pipeline`` or ``kfp`` are parsed, and then the files that mention the name of a
    module found defining pipelines (they may import one).
    """
    errors: list[ScanError] = []
    seen: set[Path] = set()
    known: dict[Path, list[Found]] = {}
    root_list = [Path(r).resolve() for r in roots]
    order: list[Path] = []
    trees: dict[Path, tuple[list[Found], _Names]] = {}
    deferred: list[tuple[Path, bytes]] = []
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
            order.append(resolved)
            if not explicit:
                try:
                    data = resolved.read_bytes()
                except OSError:
                    continue
                if b"pipeline" not in data and b"kfp" not in data:
                    if b"import" in data:
                        deferred.append((resolved, data))
                    continue
            parsed = _parse(file)
            if isinstance(parsed, ScanError):
                if explicit or "dsl" in _safe_text(resolved):
                    errors.append(parsed)
                continue
            if parsed[1] is not None:
                trees[resolved] = _scan_tree(parsed[0], parsed[1])
                known.setdefault(resolved, list(trees[resolved][0]))
    stems = {(source.parent.name if source.name == "__init__.py" else source.stem).encode()
             for source, (defined, _) in trees.items() if defined}
    for source, data in deferred:  # might import a pipeline from a module found defining one
        if stems and any(stem in data for stem in stems):
            parsed = _parse(source)
            if not isinstance(parsed, ScanError) and parsed[1] is not None:
                trees[source] = _scan_tree(parsed[0], parsed[1])
    found: list[Found] = []
    for source in order:
        if source not in trees:
            continue
        defined, names = trees[source]
        found.extend(defined)
        defined_names = {f.function for f in defined}
        found.extend(f for f in _imported_pipelines(source, names, known, root_list)
                     if f.function not in defined_names)
    return found, errors


def _safe_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
