"""A process-wide registry of secret values and the redactor every output path goes through.

Whoever reads a password, token or cookie calls :func:`register` with it. Error messages
(:mod:`kfp_ci.errors`), CLI output and logs pass text through :func:`redact`, which replaces every
registered value with ``***``. Under GitHub Actions, :func:`register` also emits ``::add-mask::`` so the
runner masks the value in its log too.

A value spanning several lines is registered whole and line by line (``::add-mask::`` covers one line: the
rest of a multi-line value would be printed as a log line of its own), and :func:`clean` is what every reader
of a secret (file or environment variable) applies: one trailing newline removed, any other control
character refused with a reason that never repeats the value.
"""

from __future__ import annotations

import os
import re
import sys
import threading

__all__ = ["MASK", "clean", "clear", "redact", "register"]

MASK = "***"
_MIN_LENGTH = 4  # shorter values would mask ordinary words
_lock = threading.Lock()
_values: set[str] = set()


def register(value: str | None, *, github_mask: bool = True) -> None:
    """Remember ``value`` as a secret; mask it in GitHub Actions logs when running there."""
    if not value:
        return
    pieces = [value, *(part.strip() for part in _CONTROL.split(value))] if _has_control(value) else [value]
    fresh = []
    with _lock:
        for piece in dict.fromkeys(pieces):
            if len(piece) >= _MIN_LENGTH and piece not in _values:
                _values.add(piece)
                fresh.append(piece)
    if fresh and github_mask and os.environ.get("GITHUB_ACTIONS") == "true":
        # The runner reads workflow commands from stdout, one per line; each line of a value is masked on its own.
        for piece in fresh:
            if not _has_control(piece):
                sys.stdout.write(f"::add-mask::{piece}\n")
        sys.stdout.flush()


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]+")


def _has_control(value: str) -> bool:
    return _CONTROL.search(value) is not None


def clean(value: str) -> str:
    """A secret as read from a file or an environment variable, ready to use: one trailing newline (``\\n`` or
    ``\\r\\n``) removed, surrounding spaces stripped. Registers it (every line of it) for masking first, then
    raises ``ValueError`` if a line break or another control character is left; the reason never holds the value.
    """
    register(value)
    if value.endswith("\r\n"):
        value = value[:-2]
    elif value.endswith("\n"):
        value = value[:-1]
    value = value.strip(" ")
    if _has_control(value):
        raise ValueError("holds a line break or another control character inside the value (only one trailing "
                         "newline is removed): keep the secret on one line")
    register(value)
    return value


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
