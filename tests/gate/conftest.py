"""Serve ``mlmd_routes`` alone on a loopback socket (the embedded server mounts the same routes)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest


@pytest.fixture
def serve_routes() -> Iterator[Callable[[list[Any]], str]]:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import Mount

    servers: list[tuple[Any, threading.Thread]] = []

    def start(routes: list[Any]) -> str:
        app = Starlette(routes=[Mount("/pipeline", routes=routes), *routes])
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(5)
