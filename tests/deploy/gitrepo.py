"""Throwaway git repositories for version-naming tests."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

_ENV = {
    "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, env={**os.environ, **_ENV},
                          check=True)
    return proc.stdout.strip()


def make_repo(path: Path, files: dict[str, str] | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    for name, text in (files or {"pipeline.py": "v1\n"}).items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    commit_all(path, "first")
    return path


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def new_revision(repo: Path, message: str) -> str:
    """Commit a real change to every compiled package in ``repo`` (its description), so a deploy uploads.

    A commit that leaves the packages alone deploys nothing new: the latest version already holds them.
    """
    import yaml

    for package in sorted(repo.glob("*.yaml")):
        docs = list(yaml.safe_load_all(package.read_text()))
        docs[0].setdefault("pipelineInfo", {})["description"] = f"revision: {message}"
        package.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return commit_all(repo, message)
