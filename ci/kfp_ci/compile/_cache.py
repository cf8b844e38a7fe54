"""The compile cache in ``.kfp-ci/cache/``: one entry per source module and set of options.

An entry's name hashes what does not need reading files (the source path, the functions and output
suffixes, the kfp version, the interpreter, the options, ``KF_PIPELINES_COMPILER_MODE`` and kfp-ci's documented
environment variables); the entry records what the module really read while it was imported and compiled (the
worker watches every file opened, every directory listed and every environment variable read): the SHA-256 of
every such file (its own bytes, the project modules it imported, component YAML, a ``defaults.json``...; a file
that was missing is recorded as missing), of every listing, and of every variable's value, plus the compiled
bytes. It is a hit only when all of those still hash the same.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["Cache", "dir_digest", "file_digest", "value_digest"]

_FORMAT = 2


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

    def get(self, key: str, env: Mapping[str, str]) -> list[dict[str, Any]] | None:
        """The cached results of a module, if every input it read is unchanged."""
        if not self.enabled:
            return None
        try:
            with open(self.directory / f"{key}.json", encoding="utf-8") as fh:
                entry = json.load(fh)
        except (OSError, ValueError):
            return None
        deps, dirs, variables = entry.get("deps"), entry.get("dirs", {}), entry.get("env", {})
        if not isinstance(deps, dict) or not deps or not isinstance(dirs, dict) or not isinstance(variables, dict):
            return None
        for path, digest in deps.items():
            if file_digest(path) != digest:
                return None
        for path, digest in dirs.items():
            if dir_digest(path) != digest:
                return None
        for name, digest in variables.items():
            if value_digest(env.get(name)) != digest:
                return None
        results = entry.get("results")
        return results if isinstance(results, list) else None

    def put(self, key: str, deps: Sequence[str], results: list[dict[str, Any]], digests: dict[str, str | None], *,
            dirs: Sequence[str] = (), env_names: Sequence[str] = (), env: Mapping[str, str] | None = None) -> None:
        """Store a module's results. ``digests`` are the input hashes taken before compiling."""
        if not (self.enabled and self.writable):
            return
        recorded: dict[str, str | None] = {}
        for path in deps:
            recorded[path] = digests.get(path) or file_digest(path)
        listings = {path: dir_digest(path) for path in dirs}
        environment = env if env is not None else os.environ
        variables = {name: value_digest(environment.get(name)) for name in env_names}
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".entry-", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"deps": recorded, "dirs": listings, "env": variables, "results": results}, fh)
            os.replace(tmp, self.directory / f"{key}.json")
        except OSError:
            return  # a cache that cannot be written is only slower


def dir_digest(path: str | Path) -> str | None:
    """A directory listing's hash (the sorted names), None when it cannot be listed."""
    try:
        names = sorted(os.listdir(path))
    except OSError:
        return None
    return hashlib.sha256("\0".join(names).encode("utf-8", "surrogateescape")).hexdigest()


def value_digest(value: str | None) -> str | None:
    """An environment value's hash: the cache never stores the value itself (it may be a secret)."""
    return None if value is None else hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()
