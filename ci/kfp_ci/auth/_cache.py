"""The session cache: one 0600 JSON file per host, ``$XDG_CACHE_HOME/kfp-ci/sessions/<host-key>.json``.

``$XDG_CACHE_HOME`` defaults to ``~/.cache``. The host key is readable (host, port, path) plus a short hash of
the whole host URL, so two hosts never share a file and a user can tell which file is which.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path

from kfp_ci import _secrets

__all__ = ["cache_dir", "cache_path", "forget", "host_key", "load", "save"]


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kfp-ci"


def host_key(host: str) -> str:
    """``https://kf.example.com:8443/pipeline`` -> ``kf.example.com_8443_pipeline-<12 hex>``."""
    host = host.rstrip("/")
    readable = re.sub(r"[^A-Za-z0-9.-]+", "_", host.split("://", 1)[-1]).strip("_")[:80]
    return f"{readable}-{hashlib.sha256(host.encode()).hexdigest()[:12]}"


def cache_path(host: str) -> Path:
    return cache_dir() / "sessions" / f"{host_key(host)}.json"


def save(host: str, cookies: dict[str, str], user: str | None) -> Path:
    path = cache_path(host)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    for folder in (path.parent, path.parent.parent):  # sessions/ and kfp-ci/: existing loose ones are tightened
        os.chmod(folder, 0o700)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
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
    if not all(_header_safe(k) and _header_safe(v) for k, v in cookies.items()):
        return None  # a session file edited into something no Cookie header can carry: ignored
    return cookies or None


def _header_safe(text: str) -> bool:
    return text.isascii() and text.isprintable()


def forget(host: str) -> None:
    try:
        cache_path(host).unlink()
    except OSError:
        pass
