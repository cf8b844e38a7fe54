"""Version names from git: short SHA, -dirty, templates; descriptions carry commit, ref and content hash."""

from __future__ import annotations

import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from kfp_ci.deploy._versioning import (
    GitInfo,
    content_hash,
    describe_version,
    git_info,
    hash_from_description,
    render_version_name,
)
from kfp_ci.errors import UsageError

from .gitrepo import commit_all, make_repo


def test_clean_and_dirty_trees(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    info = git_info(repo)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    assert info.sha == sha and info.ref == "main" and not info.dirty and info.count == 1
    assert render_version_name(None, info, "ab" * 32) == sha[:7]
    (repo / "pipeline.py").write_text("changed\n")
    dirty = git_info(repo / "pipeline.py")
    assert dirty.dirty
    assert render_version_name(None, dirty, "ab" * 32) == sha[:7] + "-dirty"
    commit_all(repo, "second")
    assert git_info(repo).count == 2


def test_templates(tmp_path: Path) -> None:
    info = GitInfo(sha="0123456789abcdef" * 2 + "01234567", ref="feature/x y", count=42)
    now = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)
    assert render_version_name("v{n}-{short_sha}", info, "f" * 64, now=now) == "v42-0123456"
    assert render_version_name("{ref}-{date}", info, "f" * 64, now=now) == "feature-x-y-20261123"
    assert render_version_name("{sha}", info, "f" * 64, now=now) == info.sha
    with pytest.raises(UsageError, match=r"unknown field\(s\) \{branch\}"):
        render_version_name("{branch}", info, "f" * 64)
    with pytest.raises(UsageError, match="not a valid template"):
        render_version_name("{sha", info, "f" * 64)
    with pytest.raises(UsageError, match="KFP allows 127"):
        render_version_name("x" * 130, info, "f" * 64)


def test_outside_git_uses_github_env_or_content_hash(tmp_path: Path) -> None:
    info = git_info(tmp_path, env={"GITHUB_SHA": "c" * 40, "GITHUB_REF_NAME": "main"})
    assert info.sha == "c" * 40 and info.ref == "main"
    bare = git_info(tmp_path, env={})
    assert bare.sha is None
    assert render_version_name(None, bare, "9" * 64) == "h" + "9" * 11


def test_content_hash_ignores_formatting_but_not_content() -> None:
    a = b"pipelineInfo:\n  name: p\nroot: {dag: {}}\n"
    b = b"# header comment\nroot:\n  dag: {}\npipelineInfo: {name: p}\n"
    c = b"pipelineInfo:\n  name: q\nroot: {dag: {}}\n"
    assert content_hash(a) == content_hash(b) != content_hash(c)


def test_content_hash_ignores_kfp_1_8s_compile_time_stamp_and_nothing_else() -> None:
    """kfp 1.8 stamps the clock into every workflow: recompiling the same pipeline is the same content (deploy says
    unchanged), while any other annotation or field still counts."""
    def workflow(stamp: str, image: str = "python:3.9", other: str = "x") -> bytes:
        return (f"apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata:\n  generateName: p-\n  annotations:\n"
                f"    pipelines.kubeflow.org/pipeline_compilation_time: '{stamp}'\n"
                f"    pipelines.kubeflow.org/pipeline_spec: '{other}'\n"
                f"spec:\n  entrypoint: p\n  templates:\n  - name: p\n    container: {{image: '{image}'}}\n").encode()
    first = content_hash(workflow("2026-12-04T10:00:00.000001"))
    assert content_hash(workflow("2026-12-04T18:30:00.123456")) == first
    assert content_hash(workflow("2026-12-04T10:00:00.000001", image="python:3.10")) != first
    assert content_hash(workflow("2026-12-04T10:00:00.000001", other="y")) != first
    # the same key outside an Argo workflow's metadata is content
    v2 = b"pipelineInfo: {name: p}\nroot: {dag: {}}\nmetadata: {annotations: {%s: '%s'}}\n"
    stamp_key = b"pipelines.kubeflow.org/pipeline_compilation_time"
    assert content_hash(v2 % (stamp_key, b"1")) != content_hash(v2 % (stamp_key, b"2"))


def test_description_round_trips_the_hash() -> None:
    info = GitInfo(sha="a" * 40, ref="main", dirty=True)
    text = describe_version(info, "b" * 64)
    assert "commit " + "a" * 40 + " (dirty)" in text and "ref main" in text
    assert hash_from_description(text) == "b" * 64
    assert hash_from_description("hand-made version") is None
    assert hash_from_description(None) is None
