"""A process-wide registry of secret values and the redactor every output path goes through.

Whoever reads a password, token or cookie calls :func:`register` with it. Error messages
(:mod:`kfp_ci.errors`), CLI output and logs pass text through :func:`redact`, which replaces every
registered value with ``***``. Under GitHub Actions, :func:`register` also emits ``::add-mask::`` so the
runner masks the value in its log too.
"""

from __future__ import annotations

import os
import sys
import threading

__all__ = ["MASK", "clear", "redact", "register"]

MASK = "***"
_MIN_LENGTH = 4  # shorter values would mask ordinary words
_lock = threading.Lock()
_values: set[str] = set()


def register(value: str | None, *, github_mask: bool = True) -> None:
    """Remember ``value`` as a secret; mask it in GitHub Actions logs when running there."""
    if not value or len(value) < _MIN_LENGTH:
        return
    with _lock:
        if value in _values:
            return
        _values.add(value)
    if github_mask and os.environ.get("GITHUB_ACTIONS") == "true":
        # The runner reads workflow commands from stdout; the value itself is then shown as ***.
        sys.stdout.write(f"::add-mask::{value}\n")
        sys.stdout.flush()


def redact(text: str) -> str:
    """Return ``text`` with every registered secret replaced by ``***`` (longest first)."""
    if not _values or not text:
        return text
    with _lock:
        values = sorted(_values, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text


def clear() -> None:
    """Forget every registered secret (for tests)."""
    with _lock:
        _values.clear()
