"""The import graph of a package, read from its source (AST), for the architecture tests.

Every ``import`` and ``from ... import`` counts, wherever it stands: at module level, inside a function, under
``if TYPE_CHECKING:``. Importing ``pkg.sub.mod`` from outside ``pkg.sub`` also runs ``pkg/sub/__init__.py``, so
it adds an edge to ``pkg.sub`` too (the root package, which every module lives in, is left out).
"""

from __future__ import annotations

import ast
from pathlib import Path


def modules(root: Path) -> dict[str, Path]:
    """``dotted name -> file`` for every module under the package directory ``root``."""
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _owner(name: str, known: dict[str, Path]) -> str | None:
    """The module that ``name`` (a module, or an attribute of one) lives in."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def _packages_between(target: str, importer: str, root: str) -> set[str]:
    """The packages whose ``__init__`` importing ``target`` runs, seen from ``importer``."""
    parts = target.split(".")
    out = set()
    for i in range(2, len(parts)):
        package = ".".join(parts[:i])
        if package != root and not (importer == package or importer.startswith(package + ".")):
            out.add(package)
    return out


def import_graph(root: Path) -> dict[str, set[str]]:
    """``module -> modules it imports`` within the package at ``root``."""
    known = modules(root)
    top = root.name
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    module = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    module = node.module or ""
                targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module
                           for alias in node.names]
            for target in targets:
                if target != top and not target.startswith(top + "."):
                    continue
                owner = _owner(target, known)
                if owner:
                    edges.add(owner)
                    edges |= _packages_between(owner, name, top)
        edges.discard(name)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (each one an import circle), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:  # Tarjan's algorithm
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)
