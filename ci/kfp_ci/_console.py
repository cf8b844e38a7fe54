"""Everything kfp-ci prints goes through here: redacted, to the right stream, GitHub-aware."""

from __future__ import annotations

import os
import sys
from typing import TextIO

from kfp_ci._secrets import redact

__all__ = ["error", "in_github_actions", "info", "out", "warn"]


def in_github_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def _write(stream: TextIO, text: str) -> None:
    stream.write(redact(text) + "\n")
    stream.flush()


def out(text: str = "") -> None:
    """A result line on stdout (what scripts parse)."""
    _write(sys.stdout, text)


def info(text: str) -> None:
    """A progress line on stderr."""
    _write(sys.stderr, text)


def warn(text: str) -> None:
    if in_github_actions():
        _write(sys.stdout, f"::warning::{text}")
    _write(sys.stderr, f"kfp-ci: warning: {text}")


def error(text: str) -> None:
    _write(sys.stderr, f"kfp-ci: error: {text}")
