"""Root fixtures shared by every test directory: ``kfp_server`` starts the embedded KFP-compatible server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


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
