"""Root fixtures shared by every test directory: ``kfp_server`` starts the embedded KFP-compatible server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Set by GitHub Actions (and act) on the runner the suite may itself run on: they switch kfp-ci to annotations,
# step outputs and masking. Tests that want that behaviour set them explicitly.
_RUNNER_VARS = ("GITHUB_ACTIONS", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_ENV", "GITHUB_PATH", "RUNNER_DEBUG")


@pytest.fixture(autouse=True)
def _not_inside_github_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test sees the environment of a laptop, also when the suite runs in this repository's own CI."""
    for name in _RUNNER_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def kfp_server(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Factory: ``kfp_server(**ServerOptions fields) -> LocalServer``, started on 127.0.0.1 and stopped after the test.

    ``data_dir`` defaults to a fresh directory under ``tmp_path``. Several servers may be started in one test.
    """
    from kfp_ci.local import LocalServer, ServerOptions

    started: list[Any] = []

    def start(**fields: Any) -> Any:
        fields.setdefault("data_dir", tmp_path / f"kfp-server-{len(started)}")
        server = LocalServer(ServerOptions(**fields), host="127.0.0.1", port=0)
        server.start()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.stop()
