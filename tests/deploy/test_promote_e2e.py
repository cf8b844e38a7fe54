"""kfp-ci promote and status --env all end to end: two embedded servers over real HTTP, one project.

staging: ``kfp-ci serve --auth dex`` executing runs (the gate reads the run's real metrics); production:
``kfp-ci serve --auth token``. The project declares both in ``[tool.kfp-ci.environments]``, each reading its own
secret variable (``password-env``, ``token-env``), production with its own schedule and parameters. What a user
sees is checked through the CLI and, independently, through the client against each server.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kfp_ci.cli import main

from .gitrepo import commit_all, git, make_repo

pytest.importorskip("kfp")

STAGING_PASSWORD = "staging-pass-4711"
PROD_TOKEN = "prod-token-a1b2c3d4e5"
ENV = {"KFP_CI_CONFIG": "", "GITHUB_OUTPUT": "", "GITHUB_STEP_SUMMARY": "", "GITHUB_ACTIONS": "",
       "KFP_CI_TOKEN": "", "KFP_CI_PASSWORD": "", "KFP_CI_HOST": "", "KFP_CI_ENV": "", "KFP_CI_AUTH": "",
       "STAGING_PASSWORD": STAGING_PASSWORD, "PROD_TOKEN": PROD_TOKEN}

PIPELINE = '''
from kfp import dsl
from kfp.dsl import Metrics, Output


@dsl.component(base_image="python:3.11")
def score(quality: float, metrics: Output[Metrics]) -> None:
    metrics.log_metric("r2", quality)


@dsl.pipeline(name="scored", description="logs r2 = quality")
def scored(quality: float = QUALITY) -> None:
    score(quality=quality)
'''

PYPROJECT = '''
[tool.kfp-ci]
experiment = "ci"

[[tool.kfp-ci.pipelines]]
source = "pipeline.py:scored"
name = "scored"
output = "scored.yaml"
require = ["r2>=0.8"]

[tool.kfp-ci.environments.staging]
host = "{staging}"
auth = "dex"
username = "user@example.com"
password-env = "STAGING_PASSWORD"

[tool.kfp-ci.environments.production]
host = "{production}"
auth = "token"
token-env = "PROD_TOKEN"
experiment = "prod"

[tool.kfp-ci.environments.production.pipelines.scored]
schedule = "0 0 3 * * *"
parameters = {{ quality = 0.95 }}
'''


def kfp_ci(*args: str) -> tuple[int, str, Any]:
    result = CliRunner().invoke(main, list(args), env=ENV, catch_exceptions=False)
    data = None
    starts = [i for i in (result.stdout.find("{"), result.stdout.find("[")) if i >= 0]
    if "json" in args and starts:
        data = json.loads(result.stdout[min(starts):])
    assert STAGING_PASSWORD not in result.output and PROD_TOKEN not in result.output
    return result.exit_code, result.output, data


def compile_into(root: Path, quality: float) -> None:
    """Write pipeline.py with this default and compile it to scored.yaml (the real compiler)."""
    from kfp import compiler

    (root / "pipeline.py").write_text(PIPELINE.replace("QUALITY", repr(quality)))
    spec = importlib.util.spec_from_file_location(f"promote_pipeline_{str(quality).replace('.', '_')}",
                                                  root / "pipeline.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    compiler.Compiler().compile(module.scored, str(root / "scored.yaml"))


def production_client(url: str) -> Any:
    from kfp_ci.client import BearerToken, Client

    return Client(url, auth=BearerToken(PROD_TOKEN))


def canonical(client: Any, pipeline: str, version_name: str) -> str:
    from kfp_ci.deploy._api import Api
    from kfp_ci.deploy._spec import fetch_spec, spec_hash

    api = Api(client)
    pid = api.find_pipeline(pipeline, None)
    version = api.find_version(pid, version_name)
    assert version is not None
    return spec_hash(fetch_spec(api, version))


@pytest.mark.slow
def test_promote_the_version_that_passed_then_refuse_one_that_failed_then_see_drift(
    kfp_server: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kfp_ci.auth import client_from_settings
    from kfp_ci.config import load_settings

    staging = kfp_server(auth="dex", execute=True, users={"user@example.com": STAGING_PASSWORD})
    production = kfp_server(auth="token", execute=False, tokens={PROD_TOKEN: "user@example.com"})
    root = make_repo(tmp_path / "project", {"README.md": "project\n"})
    (root / "pyproject.toml").write_text(PYPROJECT.format(staging=staging.url, production=production.url))
    compile_into(root, 0.9)
    commit_all(root, "scored, quality 0.9")
    good = git(root, "rev-parse", "--short=7", "HEAD")
    monkeypatch.chdir(root)

    # kfp-ci config shows each environment's merged settings, with sources, secrets masked.
    code, out, shown = kfp_ci("config", "--env", "production", "-o", "json")
    assert code == 0, out
    assert shown["host"] == {"value": production.url, "source": "[tool.kfp-ci.environments.production]"}
    assert shown["token"]["value"] == "***" and "PROD_TOKEN" in shown["token"]["source"]
    assert shown["pipelines.scored"]["value"]["schedule"] == "0 0 3 * * *"

    # CI on main: deploy to staging (Dex login), run, wait, gate (require from [tool.kfp-ci]).
    code, out, _ = kfp_ci("deploy", "scored.yaml", "--env", "staging", "--run", "--wait", "--timeout", "120")
    assert code == 0, out
    assert "PASSED" in out

    # Promote: production gets the same spec under the same name, and one enabled recurring run on it.
    code, out, first = kfp_ci("promote", "scored", "--from", "staging", "--to", "production", "-o", "json")
    assert code == 0, out
    assert first["version_name"] == good and first["version_action"] == "uploaded"
    assert first["promotion"]["from"] == "staging" and first["promotion"]["forced"] is False
    assert first["promotion"]["from_run_id"]
    assert first["recurring_action"] == "created"
    staging_client = client_from_settings(load_settings(env=ENV, cwd=root, environment="staging"))
    prod = production_client(production.url)
    assert canonical(prod, "scored", good) == canonical(staging_client, "scored", good)
    versions = prod.list_pipeline_versions(prod.get_pipeline_id("scored")).pipeline_versions
    assert [v.name for v in versions] == [good]
    description = versions[0].description or ""
    assert "promoted from staging" in description and first["promotion"]["from_run_id"] in description
    enabled = [r for r in prod.list_recurring_runs().recurring_runs if r.status == "ENABLED"]
    assert len(enabled) == 1
    assert enabled[0].pipeline_version_id == versions[0].id and enabled[0].cron == "0 0 3 * * *"
    assert dict(enabled[0].parameters) == {"quality": 0.95}

    # Promoting again changes nothing.
    code, out, again = kfp_ci("promote", "scored", "--from", "staging", "--to", "production", "-o", "json")
    assert code == 0, out
    assert again["version_action"] == "unchanged" and again["version_id"] == first["version_id"]
    assert again["recurring_action"] == "unchanged" and again["recurring_run_id"] == first["recurring_run_id"]
    assert len(prod.list_pipeline_versions(prod.get_pipeline_id("scored")).pipeline_versions) == 1
    assert [r.id for r in prod.list_recurring_runs().recurring_runs] == [first["recurring_run_id"]]

    # A new commit whose staging run fails the gate: deploy says so, promote refuses it.
    compile_into(root, 0.5)
    commit_all(root, "scored, quality 0.5")
    bad = git(root, "rev-parse", "--short=7", "HEAD")
    code, out, _ = kfp_ci("deploy", "scored.yaml", "--env", "staging", "--run", "--wait", "--timeout", "120")
    assert code == 1 and "did not pass the gate" in out
    code, out, _ = kfp_ci("promote", "scored", "--from", "staging", "--to", "production")
    assert code == 1, out
    assert f"version '{bad}' has no SUCCEEDED run in environment 'staging' that passed the gate (r2>=0.8)" in out
    assert "--force" in out and "Traceback" not in out
    assert [v.name for v in prod.list_pipeline_versions(prod.get_pipeline_id("scored")).pipeline_versions] == [good]
    # --force is possible, and says so (dry run here: nothing changes).
    code, out, _ = kfp_ci("promote", "scored", "--from", "staging", "--to", "production", "--force", "--dry-run")
    assert code == 0, out
    assert "--force" in out and "FORCED" in out
    assert [v.name for v in prod.list_pipeline_versions(prod.get_pipeline_id("scored")).pipeline_versions] == [good]

    # Drift report: staging runs HEAD's file (in sync), production an earlier commit's (behind).
    code, out, rows = kfp_ci("status", "--env", "all", "--check", "-o", "json")
    assert code == 0, out
    assert rows is not None, out
    states = {(r["environment"], r["role"].split(" ")[0]): r["state"] for r in rows}
    assert {r["content_hash"] for r in rows if r["environment"] == "production"} == {
        canonical(prod, "scored", good)}
    assert states == {("staging", "latest"): "in sync", ("production", "latest"): "behind",
                      ("production", "recurring"): "behind"}

    # Someone deploys a hand-edited file to production: content no commit made.
    compile_into(root, 0.7)
    code, out, _ = kfp_ci("deploy", "scored.yaml", "--env", "production", "--version-name", "hotfix")
    assert code == 0, out
    git(root, "checkout", "--", "pipeline.py", "scored.yaml")
    code, out, rows = kfp_ci("status", "--env", "all", "--check", "-o", "json")
    assert code == 1
    by_role = {(r["environment"], r["role"].split(" ")[0]): r for r in rows}
    assert by_role[("production", "latest")]["state"] == "drifted"
    assert by_role[("production", "latest")]["version"] == "hotfix-dirty"  # deployed from a dirty tree
    # production's schedule (from its environment table) moved the recurring run onto the hand-made version
    assert by_role[("production", "recurring")]["state"] == "drifted"
    assert by_role[("production", "recurring")]["version"] == "hotfix-dirty"
    assert by_role[("staging", "latest")]["state"] == "in sync"
    assert "drift: scored in production holds content no commit made" in out
    code, out, _ = kfp_ci("status", "--env", "all")  # without --check: a report, exit 0
    assert code == 0 and "drifted" in out

    # A promotion under a name production already holds with other content is refused, even forced.
    compile_into(root, 0.6)  # dirty again, with content neither staging nor production holds
    code, out, _ = kfp_ci("deploy", "scored.yaml", "--env", "staging", "--version-name", "hotfix")
    assert code == 0, out
    git(root, "checkout", "--", "pipeline.py", "scored.yaml")
    code, out, _ = kfp_ci("promote", "scored", "--from", "staging", "--to", "production", "--version",
                          "hotfix-dirty", "--force")
    assert code != 0, out
    assert "already has version 'hotfix-dirty' of 'scored' with other content" in out and "Traceback" not in out
    assert sorted(v.name for v in prod.list_pipeline_versions(prod.get_pipeline_id("scored")).pipeline_versions) \
        == sorted([good, "hotfix-dirty"])
