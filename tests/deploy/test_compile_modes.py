"""deploy --compile auto|always|never (the committed compiled file or a fresh compile) and --run-always."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .gitrepo import commit_all, make_repo
from .test_deploy_e2e import kfp_ci, sdk

HERE = Path(__file__).parent

PYPROJECT = '''
[[tool.kfp-ci.pipelines]]
source = "pipelines_src.py:add_square"
name = "add-square"
output = "compiled/add-square.yaml"
'''


@pytest.fixture
def project(tmp_path: Path, compiled: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project whose [tool.kfp-ci] pipeline has its compiled output committed."""
    root = make_repo(tmp_path / "project", {"pyproject.toml": PYPROJECT})
    shutil.copy(HERE / "pipelines_src.py", root / "pipelines_src.py")
    (root / "compiled").mkdir()
    shutil.copy(compiled["add-square"], root / "compiled" / "add-square.yaml")
    commit_all(root, "pipeline and its compiled file")
    monkeypatch.chdir(root)
    return root


def test_auto_uploads_the_committed_file_without_compiling(project: Path,
                                                           kfp_server: Callable[..., Any]) -> None:
    """auto (the default): the committed output is uploaded as is; the summary names it and its content hash."""
    srv = kfp_server(execute=False)
    committed = project / "compiled" / "add-square.yaml"
    before = committed.read_bytes()
    code, out, data = kfp_ci("deploy", "--host", srv.url, "-o", "json")
    assert code == 0, out
    assert data["package"] == "compiled/add-square.yaml" and data["compiled"] is False
    assert data["version_action"] == "uploaded" and len(data["content_hash"]) == 64
    assert committed.read_bytes() == before
    code, out, _ = kfp_ci("deploy", "--host", srv.url)
    assert "compiled/add-square.yaml (committed file, not recompiled)" in out
    assert f"sha256:{data['content_hash']}" in out


def test_always_recompiles_and_never_refuses_a_missing_file(project: Path, kfp_server: Callable[..., Any]) -> None:
    srv = kfp_server(execute=False)
    # A stale committed file (changed description) is not what `always` uploads: it compiles the source.
    committed = project / "compiled" / "add-square.yaml"
    committed.write_text(committed.read_text().replace("a + b, squared", "stale"))
    code, out, data = kfp_ci("deploy", "--host", srv.url, "--compile", "always", "-o", "json")
    assert code == 0, out
    assert data["compiled"] is True and "stale" not in committed.read_text()  # compiled to its output
    [version] = sdk(srv.url).list_pipeline_versions(sdk(srv.url).get_pipeline_id("add-square")).pipeline_versions
    assert "stale" not in str(version.pipeline_spec)

    committed.unlink()
    code, out, _ = kfp_ci("deploy", "--host", srv.url, "--compile", "never")
    assert code == 2 and "--compile never: add-square: its compiled file compiled/add-square.yaml is missing" in out
    assert "Traceback" not in out
    # auto compiles when the committed file is missing.
    code, out, data = kfp_ci("deploy", "--host", srv.url, "-o", "json")
    assert code == 0 and data["compiled"] is True, out


def test_run_always_runs_an_unchanged_pipeline(project: Path, kfp_server: Callable[..., Any]) -> None:
    """--run skips an unchanged pipeline (run_skipped says why); --run-always starts a run of the latest version."""
    srv = kfp_server(execute=False, run_delay=0.1)
    code, out, first = kfp_ci("deploy", "--host", srv.url, "--run", "-o", "json")
    assert code == 0 and first["run_id"], out
    commit_all(project, "docs only")
    code, out, second = kfp_ci("deploy", "--host", srv.url, "--run", "--wait", "-o", "json")
    assert code == 0, out
    assert second["version_action"] == "unchanged" and second["run_id"] is None and second["run_skipped"]
    assert second["version_id"] == first["version_id"]
    code, out, third = kfp_ci("deploy", "--host", srv.url, "--run", "--run-always", "--wait", "-o", "json")
    assert code == 0, out
    assert third["version_action"] == "unchanged" and third["run_state"] == "SUCCEEDED"
    assert len(sdk(srv.url).list_runs().runs) == 2
    code, out, _ = kfp_ci("deploy", "--host", srv.url, "--run-always")
    assert code == 2 and "--run-always needs --run" in out
