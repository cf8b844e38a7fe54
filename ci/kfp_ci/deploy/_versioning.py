"""Version names and descriptions derived from git, and the content hash of a compiled package.

The default version name is the commit's short SHA, with ``-dirty`` when the work tree has uncommitted
changes. A template may use ``{sha}``, ``{short_sha}``, ``{ref}`` (branch or tag, made name-safe),
``{date}`` (UTC, YYYYMMDD) and ``{n}`` (number of commits up to HEAD). The description records the commit,
the ref and the package's content hash, which is how a redeploy recognises "unchanged" versus "conflict".
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import string
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from kfp_ci._package import without_clock
from kfp_ci._yaml import load_docs
from kfp_ci.errors import UsageError

__all__ = [
    "GitInfo",
    "content_hash",
    "describe_version",
    "git_info",
    "hash_from_description",
    "render_version_name",
]

DEFAULT_TEMPLATE = "{short_sha}"
_FIELDS = {"sha", "short_sha", "ref", "date", "n"}
_MAX_NAME = 127  # KFP: version names are varchar(127) per pipeline
_HASH_RE = re.compile(r"\bsha256[:=]([0-9a-f]{16,64})\b")


@dataclass(frozen=True, slots=True)
class GitInfo:
    """What the version name and description are built from. All ``None`` outside a git work tree."""

    sha: str | None = None
    ref: str | None = None
    dirty: bool = False
    count: int | None = None

    @property
    def short_sha(self) -> str | None:
        return self.sha[:7] if self.sha else None


def _git(cwd: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def git_info(path: Path | None = None, env: dict[str, str] | None = None, *, want_count: bool = True) -> GitInfo:
    """Commit, ref, dirtiness and commit count of the work tree holding ``path`` (default: cwd).

    One ``git status`` call gives the commit, the branch and dirtiness. Falls back to ``GITHUB_SHA`` /
    ``GITHUB_REF_NAME`` when there is no git work tree (e.g. a tarball).
    """
    env = dict(os.environ) if env is None else env
    where = (path or Path.cwd()).resolve()
    if where.is_file():
        where = where.parent
    while not where.exists() and where != where.parent:
        where = where.parent
    status = _git(where, "status", "--porcelain=v2", "--branch", "--untracked-files=no")
    sha: str | None = None
    ref: str | None = None
    dirty = False
    for line in (status or "").splitlines():
        if line.startswith("# branch.oid "):
            value = line.split(" ", 2)[2].strip()
            sha = value if value != "(initial)" else None
        elif line.startswith("# branch.head "):
            value = line.split(" ", 2)[2].strip()
            ref = value if value != "(detached)" else None
        elif line and not line.startswith("#"):
            dirty = True
    if not sha:
        gh_sha = env.get("GITHUB_SHA") or None
        return GitInfo(sha=gh_sha, ref=env.get("GITHUB_REF_NAME") or None)
    if not ref:  # detached HEAD, e.g. actions/checkout of a tag or a PR merge commit
        ref = (_git(where, "describe", "--tags", "--exact-match") or env.get("GITHUB_HEAD_REF")
               or env.get("GITHUB_REF_NAME") or None)
    count = _git(where, "rev-list", "--count", "HEAD") if want_count else None
    return GitInfo(sha=sha, ref=ref, dirty=dirty, count=int(count) if count and count.isdigit() else None)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "unknown"


def render_version_name(
    template: str | None,
    info: GitInfo,
    package_hash: str,
    *,
    now: datetime | None = None,
) -> str:
    """Expand the version-name template. ``-dirty`` is appended when the tree is dirty.

    Without git (no commit known), ``{sha}``/``{short_sha}`` fall back to the package's content hash.
    """
    template = template or DEFAULT_TEMPLATE
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise UsageError(f"--version-name {template!r} is not a valid template: {exc}") from None
    unknown = sorted(names - _FIELDS)
    if unknown:
        raise UsageError(
            f"--version-name {template!r} uses unknown field(s) {', '.join('{' + u + '}' for u in unknown)}; "
            "use {sha}, {short_sha}, {ref}, {date} or {n}"
        )
    when = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    values = {
        "sha": info.sha or f"h{package_hash[:39]}",
        "short_sha": info.short_sha or f"h{package_hash[:11]}",
        "ref": _safe(info.ref) if info.ref else "detached",
        "date": when.strftime("%Y%m%d"),
        "n": str(info.count) if info.count is not None else "0",
    }
    if "n" in names and info.count is None:
        raise UsageError("--version-name uses {n} but this is not a git work tree")
    name = template.format(**values)
    if info.dirty:
        name += "-dirty"
    if not name.strip():
        raise UsageError(f"--version-name {template!r} renders an empty name")
    if len(name) > _MAX_NAME:
        raise UsageError(f"version name {name[:40]!r}... is {len(name)} characters; KFP allows {_MAX_NAME}")
    return name


def _canonical(value: Any) -> Any:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def content_hash(package: bytes, docs: list[Any] | None = None) -> str:
    """SHA-256 of the package's content (parsed YAML documents, key order and formatting ignored, and the compile
    time kfp 1.8 stamps into every Argo workflow), so recompiling or re-packing the same pipeline hashes the same."""
    try:
        parsed = load_docs(package.decode("utf-8")) if docs is None else docs
        body = _canonical([without_clock(doc) for doc in parsed]).encode("utf-8")
    except (yaml.YAMLError, UnicodeDecodeError):
        body = package
    return hashlib.sha256(body).hexdigest()


def describe_version(info: GitInfo, package_hash: str, *, extra: str | None = None) -> str:
    """The version description: commit, ref and content hash, in a form :func:`hash_from_description` reads."""
    parts = []
    if extra:
        parts.append(extra.strip())
    parts.append(f"commit {info.sha or 'unknown'}" + (" (dirty)" if info.dirty else ""))
    if info.ref:
        parts.append(f"ref {info.ref}")
    parts.append(f"sha256:{package_hash}")
    parts.append("deployed by kfp-ci")
    return "; ".join(parts)


def hash_from_description(description: str | None) -> str | None:
    """The content hash recorded by :func:`describe_version`, if any."""
    if not description:
        return None
    match = _HASH_RE.search(description)
    return match.group(1) if match else None
