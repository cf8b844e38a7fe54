"""The compile cache in ``.kfp-ci/cache/``: one entry per source module and set of options.

An entry's name hashes what does not need reading files (the source path, the functions and output
suffixes, the kfp version, the interpreter, the options); the entry records the SHA-256 of every input the
module loaded when it was compiled (its own bytes, the project-local modules it imported, the component
YAML files it opened), plus the compiled bytes. It is a hit only when all of those files still hash the same.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["Cache", "file_digest"]

_FORMAT = 1


def file_digest(path: str | Path) -> str | None:
    try:
        with open(path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()
    except OSError:
        return None


class Cache:
    def __init__(self, directory: Path, *, enabled: bool = True, writable: bool = True) -> None:
        self.directory = directory
        self.enabled = enabled
        self.writable = writable

    @staticmethod
    def key(identity: dict[str, Any]) -> str:
        blob = json.dumps({"format": _FORMAT, **identity}, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:40]

    def get(self, key: str) -> list[dict[str, Any]] | None:
        """The cached results of a module, if every input it loaded is unchanged."""
        if not self.enabled:
            return None
        try:
            with open(self.directory / f"{key}.json", encoding="utf-8") as fh:
                entry = json.load(fh)
        except (OSError, ValueError):
            return None
        deps = entry.get("deps")
        if not isinstance(deps, dict) or not deps:
            return None
        for path, digest in deps.items():
            if file_digest(path) != digest:
                return None
        results = entry.get("results")
        return results if isinstance(results, list) else None

    def put(self, key: str, deps: list[str], results: list[dict[str, Any]], digests: dict[str, str | None]) -> None:
        """Store a module's results. ``digests`` are the input hashes taken before compiling."""
        if not (self.enabled and self.writable):
            return
        recorded: dict[str, str] = {}
        for path in deps:
            digest = digests.get(path) or file_digest(path)
            if digest is None:
                return
            recorded[path] = digest
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".entry-", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"deps": recorded, "results": results}, fh)
            os.replace(tmp, self.directory / f"{key}.json")
        except OSError:
            return  # a cache that cannot be written is only slower
