"""kfp-promote.yml run for real with act: staging (Dex login, executed run, gate) then production (token).

The example caller (examples/github/kfp-promote.yml) runs on push to main; the consumer repository declares the
two environments in [tool.kfp-ci.environments], naming the variables the workflow sets from its secrets.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from act_helpers import compile_pipeline, git

from kfp_ci.client import BearerToken, Client
from kfp_ci.local import LocalServer, ServerOptions

pytestmark = [pytest.mark.act, pytest.mark.slow]

STAGING_PASSWORD = "st4ging-dex-pass-91c2"
PRODUCTION_TOKEN = "pr0d-kfp-token-77e3b1"

SCORED_SOURCE = '''
from kfp import dsl
from kfp.dsl import Metrics, Output


@dsl.component(base_image="python:3.11-slim")
def score(quality: float, metrics: Output[Metrics]) -> None:
    metrics.log_metric("r2", quality)


@dsl.pipeline(name="scored")
def hello_pipeline(quality: float = QUALITY):
    score(quality=quality)
'''

PYPROJECT = '''
[tool.kfp-ci]
experiment = "ci"

[[tool.kfp-ci.pipelines]]
source = "pipelines/scored.py:hello_pipeline"
name = "scored"
output = "compiled/scored.yaml"
require = ["r2>=0.8"]

[tool.kfp-ci.environments.staging]
host = "{staging}"
auth = "dex"
username = "user@example.com"
password-env = "KFP_STAGING_PASSWORD"

[tool.kfp-ci.environments.production]
host = "{production}"
auth = "token"
token-env = "KFP_PRODUCTION_TOKEN"

[tool.kfp-ci.environments.production.pipelines.scored]
every = "1d"
'''


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[LocalServer, LocalServer]]:
    staging = ServerOptions(data_dir=tmp_path / "staging", auth="dex", users={"user@example.com": STAGING_PASSWORD},
                            execute=True)
    production = ServerOptions(data_dir=tmp_path / "production", auth="token",
                               tokens={PRODUCTION_TOKEN: "user@example.com"}, execute=False)
    with LocalServer(staging, host="127.0.0.1", port=0) as st, LocalServer(production, host="127.0.0.1", port=0) as pr:
        yield st, pr


def _project(repo: Path, staging: str, production: str, quality: float) -> None:
    (repo / "pyproject.toml").write_text(PYPROJECT.format(staging=staging, production=production), encoding="utf-8")
    (repo / "pipelines" / "scored.py").write_text(SCORED_SOURCE.replace("QUALITY", repr(quality)), encoding="utf-8")
    compile_pipeline(repo / "pipelines" / "scored.py", repo / "compiled" / "scored.yaml")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"scored, quality {quality}")


def _leaks(output: str) -> list[str]:
    return [s for s in (STAGING_PASSWORD, PRODUCTION_TOKEN) if s in output]


def test_promote_workflow_deploys_gates_then_promotes_the_same_version(
    consumer: Path, run_act: Any, servers: tuple[LocalServer, LocalServer]
) -> None:
    staging, production = servers
    _project(consumer, staging.url, production.url, 0.93)
    secrets = {"KFP_STAGING_PASSWORD": STAGING_PASSWORD, "KFP_PRODUCTION_TOKEN": PRODUCTION_TOKEN}
    result = run_act(consumer, "push", "kfp-promote.yml", variables={"KFP_PIPELINE": "scored"}, secrets=secrets,
                     timeout=400)
    assert result.returncode == 0, result.output[-5000:]
    assert not _leaks(result.output)
    printed = dict(line.split("| promoted ", 1)[1].split("=", 1) for line in result.output.splitlines()
                   if "| promoted " in line and "=" in line)
    printed = {k: v.strip() for k, v in printed.items()}

    with Client(production.url, auth=BearerToken(PRODUCTION_TOKEN)) as prod:
        pid = prod.get_pipeline_id("scored")
        assert pid is not None
        [version] = prod.list_pipeline_versions(pid).pipeline_versions
        assert version.name == printed["version-name"] and version.id == printed["version-id"]
        assert f"run {printed['staging-run-id']}" in (version.description or "")
        enabled = [r for r in prod.list_recurring_runs().recurring_runs if r.status == "ENABLED"]
        assert [r.id for r in enabled] == [printed["recurring-run-id"]]
        assert enabled[0].pipeline_version_id == version.id and enabled[0].interval_second == 86400

    # A commit whose staging run fails the gate stops in the staging job: production is untouched.
    _project(consumer, staging.url, production.url, 0.4)
    result = run_act(consumer, "push", "kfp-promote.yml", variables={"KFP_PIPELINE": "scored"}, secrets=secrets,
                     timeout=400)
    assert result.returncode != 0
    assert "did not pass the gate" in result.output and "Traceback" not in result.output
    assert not _leaks(result.output)
    with Client(production.url, auth=BearerToken(PRODUCTION_TOKEN)) as prod:
        assert [v.name for v in prod.list_pipeline_versions(pid).pipeline_versions] == [version.name]
