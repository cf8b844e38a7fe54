"""The session cache: one 0600 JSON file per host under ``$XDG_CACHE_HOME/kfp-ci`` (or ``~/.cache/kfp-ci``)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from kfp_ci import _secrets

__all__ = ["cache_dir", "cache_path", "forget", "load", "save"]


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kfp-ci"


def cache_path(host: str) -> Path:
    key = hashlib.sha256(host.rstrip("/").encode()).hexdigest()[:24]
    return cache_dir() / f"session-{key}.json"


def save(host: str, cookies: dict[str, str], user: str | None) -> Path:
    directory = cache_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = cache_path(host)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({"host": host.rstrip("/"), "user": user, "saved_at": time.time(), "cookies": cookies}, handle)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def load(host: str) -> dict[str, str] | None:
    path = cache_path(host)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("host") != host.rstrip("/") or not isinstance(data.get("cookies"), dict):
        return None
    cookies = {str(k): str(v) for k, v in data["cookies"].items()}
    for value in cookies.values():
        _secrets.register(value)
    return cookies or None


def forget(host: str) -> None:
    try:
        cache_path(host).unlink()
    except OSError:
        pass
