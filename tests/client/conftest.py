"""Fixtures for the client tests: backoff off, a small compiled-IR package, secrets forgotten after each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kfp_ci import _secrets
from kfp_ci.client import _retry

from .fakes import PACKAGE


@pytest.fixture(autouse=True)
def _no_backoff() -> Iterator[None]:
    """Backoff off (waits 0) for every client test, like stamina's testing mode; secrets forgotten after."""
    with _retry.testing():
        yield
    _secrets.clear()


@pytest.fixture
def package(tmp_path: Path) -> Path:
    path = tmp_path / "add-square.yaml"
    path.write_text(PACKAGE)
    return path


