"""Fixtures for the deploy tests: compiled packages inside throwaway git repositories."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from .gitrepo import commit_all, make_repo

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Compile the test pipelines once (real kfp compiler)."""
    from kfp import compiler

    from . import pipelines_src

    out = tmp_path_factory.mktemp("compiled")
    result = {}
    for name, func in [("add-square", pipelines_src.add_square), ("needs-input", pipelines_src.needs_input),
                       ("always-fails", pipelines_src.always_fails)]:
        path = out / f"{name}.yaml"
        compiler.Compiler().compile(func, str(path))
        result[name] = path
    return result


@pytest.fixture
def repo(tmp_path: Path, compiled: dict[str, Path]) -> Callable[..., Path]:
    """A git repo holding compiled packages; call it again to commit a change (a new version)."""
    root = tmp_path / "project"

    def make(*names: str, change: str | None = None) -> Path:
        if not (root / ".git").exists():
            make_repo(root, {"README.md": "project\n"})
        for name in names or ("add-square",):
            shutil.copy(compiled[name], root / f"{name}.yaml")
        if change is not None:
            (root / "CHANGES").write_text(change)
        commit_all(root, change or "pipelines")
        return root

    return make
