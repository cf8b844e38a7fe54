"""kfp-ci promote and status --env all: bad input is one line and exit 2, before any request."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from kfp_ci.cli import main

ENV = {"KFP_CI_CONFIG": "", "KFP_CI_ENV": "", "KFP_CI_HOST": "", "KFP_CI_TOKEN": "", "GITHUB_ACTIONS": ""}
# Hosts nothing listens on: a request would fail with exit 4, not 2.
TABLE = """
[[tool.kfp-ci.pipelines]]
source = "p.py"
name = "train"
require = ["r2>>0.8"]

[tool.kfp-ci.environments.staging]
host = "http://127.0.0.1:9"

[tool.kfp-ci.environments.production]
host = "http://127.0.0.1:9"
namespace = "prod"
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "pyproject.toml").write_text(TABLE)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(("args", "message"), [
    (["promote", "train", "--from", "staging", "--to", "staging"], "--from and --to name the same environment"),
    (["promote", "train", "--from", "staging", "--to", "prod"], "unknown environment 'prod'"),
    (["promote", "train", "--from", "staging", "--to", "production", "--version", "v1", "--run-id", "r"],
     "--version and --run-id both name the version"),
    (["promote", "train", "--from", "staging", "--to", "production", "--wait"], "--wait needs --run"),
    (["promote", "train", "--from", "staging", "--to", "production"], "r2>>0.8"),
    (["status", "--check"], "--check needs --env all"),
])
def test_bad_input_is_one_line_exit_2(project: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, args, env=ENV)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kfp-ci: error: ") and message in lines[0], lines


def test_status_env_all_needs_environments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pyproject.toml").write_text('[[tool.kfp-ci.pipelines]]\nsource = "p.py"\nname = "train"\n')
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["status", "--env", "all"], env=ENV)
    assert result.exit_code == 2
    assert "declares no environments" in result.output
