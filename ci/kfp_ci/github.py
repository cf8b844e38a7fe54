"""GitHub Actions integration: workflow commands, step outputs, job summaries.

All of it is a no-op outside GitHub Actions (``GITHUB_ACTIONS != "true"``) except where a function says
otherwise. Values written here pass through the secret redactor first.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from kfp_ci._secrets import redact

__all__ = [
    "annotation",
    "append_summary",
    "enabled",
    "group",
    "set_outputs",
]


def enabled() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def _escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(value: str) -> str:
    return _escape_data(value).replace(":", "%3A").replace(",", "%2C")


def annotation(
    level: str,
    message: str,
    *,
    file: str | Path | None = None,
    line: int | None = None,
    title: str | None = None,
    force: bool = False,
) -> str:
    """Format (and, under GitHub Actions or with ``force``, print) an ``::error``/``::warning``/``::notice``.

    Returns the command line, so ``--format github`` can print it anywhere.
    """
    if level not in ("error", "warning", "notice"):
        raise ValueError(f"unknown annotation level {level!r}")
    props = []
    if file is not None:
        props.append(f"file={_escape_property(str(file))}")
    if line is not None:
        props.append(f"line={int(line)}")
    if title:
        props.append(f"title={_escape_property(title)}")
    command = f"::{level}{' ' + ','.join(props) if props else ''}::{_escape_data(redact(message))}"
    if force or enabled():
        sys.stdout.write(command + "\n")
        sys.stdout.flush()
    return command


@contextmanager
def group(title: str, *, force: bool = False) -> Iterator[None]:
    """Fold the output printed inside the block under ``title`` in the GitHub log."""
    active = force or enabled()
    if active:
        sys.stdout.write(f"::group::{redact(title)}\n")
        sys.stdout.flush()
    try:
        yield
    finally:
        if active:
            sys.stdout.write("::endgroup::\n")
            sys.stdout.flush()


def set_outputs(outputs: Mapping[str, str | None]) -> bool:
    """Append step outputs to ``$GITHUB_OUTPUT`` (multi-line values use a random delimiter).

    ``None`` values are written as empty strings, so every declared output is set. Returns whether a file
    was written.
    """
    path = os.environ.get("GITHUB_OUTPUT")
    if not path:
        return False
    with open(path, "a", encoding="utf-8") as fh:
        for key, value in outputs.items():
            text = redact("" if value is None else str(value))
            if "\n" in text:
                delimiter = f"ghadelimiter_{uuid.uuid4().hex}"
                fh.write(f"{key}<<{delimiter}\n{text}\n{delimiter}\n")
            else:
                fh.write(f"{key}={text}\n")
    return True


def append_summary(markdown: str) -> bool:
    """Append Markdown to ``$GITHUB_STEP_SUMMARY``. Returns whether a file was written."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return False
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(redact(markdown).rstrip("\n") + "\n\n")
    return True
