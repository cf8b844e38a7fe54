"""The architecture holds: no import circles in kfp_ci, and imports run one way between its concerns."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from import_graph import cycles, import_graph

import kfp_ci

PACKAGE = Path(kfp_ci.__file__).parent

# Concerns from the bottom up; a module may import its own concern and those listed before it, never after.
# deploy runs the gate on a finished run (deploy --require), so gate sits below deploy; the embedded server
# (local) stands apart, on the shared bottom only; the CLI and the root package sit on top.
LAYERS: list[tuple[str, ...]] = [
    ("_version", "_secrets", "_yaml", "_protowire"),
    ("errors", "_console", "github"),
    ("_package",),
    ("config",),
    ("compile", "client"),
    ("auth",),
    ("gate",),
    ("deploy",),
    ("local",),
    ("cli",),
    ("__main__", ""),
]


def _concern(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _layer(module: str) -> int:
    concern = _concern(module)
    return next(i for i, names in enumerate(LAYERS) if concern in names)


def test_kfp_ci_has_no_import_circle() -> None:
    assert cycles(import_graph(PACKAGE)) == []


def test_every_module_belongs_to_a_declared_concern() -> None:
    for module in import_graph(PACKAGE):
        assert any(_concern(module) in names for names in LAYERS), f"{module}: add its concern to LAYERS"


def _against_the_flow(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{module} -> {target}" for module, targets in graph.items() for target in targets
                  if _concern(target) != _concern(module) and _layer(target) >= _layer(module))


def test_imports_run_one_way_between_concerns() -> None:
    assert _against_the_flow(import_graph(PACKAGE)) == []


def test_only_the_cli_reaches_the_embedded_server() -> None:
    users = {m for m, targets in import_graph(PACKAGE).items()
             if any(t == "kfp_ci.local" or t.startswith("kfp_ci.local.") for t in targets)}
    assert {u for u in users if not u.startswith("kfp_ci.local")} == {"kfp_ci.cli"}


def _copy(tmp_path: Path) -> Path:
    copy = tmp_path / "kfp_ci"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


@pytest.mark.parametrize("line", [
    "from kfp_ci.deploy import deploy",              # a module-level import
    "def _later():\n    from kfp_ci.deploy._deploy import deploy\n",  # nested in a function
    "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from kfp_ci.deploy import DeployResult\n",
])
def test_a_circle_introduced_on_purpose_is_found(tmp_path: Path, line: str) -> None:
    copy = _copy(tmp_path)
    rules = copy / "gate" / "_rules.py"
    rules.write_text(rules.read_text() + "\n\n" + line + "\n")
    found = cycles(import_graph(copy))
    assert found and any("kfp_ci.gate._rules" in circle and "kfp_ci.deploy" in circle for circle in found), found


def test_a_submodule_importing_its_own_package_is_a_circle(tmp_path: Path) -> None:
    copy = _copy(tmp_path)
    metrics = copy / "gate" / "_metrics.py"
    metrics.write_text(metrics.read_text() + "\n\nfrom kfp_ci import gate  # noqa\n")
    assert any("kfp_ci.gate" in circle and "kfp_ci.gate._metrics" in circle for circle in cycles(import_graph(copy)))


def test_an_import_against_the_flow_is_found(tmp_path: Path) -> None:
    copy = _copy(tmp_path)
    results = copy / "compile" / "_results.py"  # compile sits below gate: it must not reach up to it
    results.write_text(results.read_text() + "\n\ndef _later():\n    from kfp_ci.gate import evaluate_gate\n")
    graph = import_graph(copy)
    assert cycles(graph) == []
    assert "kfp_ci.compile._results -> kfp_ci.gate" in _against_the_flow(graph)
