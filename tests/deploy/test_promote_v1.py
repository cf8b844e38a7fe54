"""kfp-ci promote between two KFP 1.8 servers (v1beta1): the spec comes from the version's template."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from kfp_ci.cli import main

ENV = {"KFP_CI_CONFIG": "", "GITHUB_OUTPUT": "", "GITHUB_STEP_SUMMARY": "", "GITHUB_ACTIONS": "",
       "KFP_CI_TOKEN": "", "KFP_CI_PASSWORD": "", "KFP_CI_HOST": "", "KFP_CI_ENV": "", "KFP_CI_AUTH": ""}

PYPROJECT = """
[[tool.kfp-ci.pipelines]]
source = "pipeline.py"
name = "add-square"
output = "add-square.yaml"

[tool.kfp-ci.environments.staging]
host = "{staging}"
auth = "none"

[tool.kfp-ci.environments.production]
host = "{production}"
auth = "none"
"""


def test_promote_on_kfp_1_8_reads_the_version_template(kfp_server: Callable[..., Any], repo: Callable[..., Path],
                                                        monkeypatch: Any) -> None:
    from kfp_ci._yaml import load_docs
    from kfp_ci.client import Client
    from kfp_ci.deploy._api import Api
    from kfp_ci.deploy._spec import fetch_spec, file_docs, spec_hash

    staging = kfp_server(execute=False, compat="1.8", run_delay=0.0)
    production = kfp_server(execute=False, compat="1.8")
    root = repo("add-square")
    (root / "pyproject.toml").write_text(PYPROJECT.format(staging=staging.url, production=production.url))
    monkeypatch.chdir(root)
    runner = CliRunner()
    done = runner.invoke(main, ["deploy", "add-square.yaml", "--env", "staging", "--run", "--wait", "-o", "json"],
                         env=ENV)
    assert done.exit_code == 0, done.output
    deployed = json.loads(done.stdout[done.stdout.find("{"):])
    done = runner.invoke(main, ["promote", "add-square", "--from", "staging", "--to", "production", "-o", "json"],
                         env=ENV)
    assert done.exit_code == 0, done.output
    promoted = json.loads(done.stdout[done.stdout.find("{"):])
    assert promoted["version_name"] == deployed["version_name"]
    assert promoted["promotion"]["from_run_id"] == deployed["run_id"]
    with Client(production.url) as client:
        assert client.server.api == "v1beta1"
        api = Api(client)
        pid = api.find_pipeline("add-square", None)
        assert pid is not None
        [version] = client.list_pipeline_versions(pid).pipeline_versions  # the forced first version is gone
        assert version.name == deployed["version_name"]
        mine = file_docs(load_docs((root / "add-square.yaml").read_text()))
        assert spec_hash(fetch_spec(api, version)) == spec_hash(mine)
    again = runner.invoke(main, ["promote", "add-square", "--from", "staging", "--to", "production", "-o", "json"],
                          env=ENV)
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout[again.stdout.find("{"):])["version_action"] == "unchanged"


PLATFORM_SPEC = {"platforms": {"kubernetes": {"deploymentSpec": {"executors": {
    "exec-add": {"nodeSelector": {"labels": {"disktype": "ssd"}}}}}}}}


def test_promote_keeps_the_platform_spec_between_two_kfp_2_servers(kfp_server: Callable[..., Any],
                                                                   repo: Callable[..., Path], monkeypatch: Any) -> None:
    """A package with a platform spec (kfp-kubernetes' node selectors, volumes...) reaches production whole: the
    server answers it as {pipeline_spec, platform_spec} (as KFP does) and promote uploads both documents."""
    import yaml

    from kfp_ci._yaml import load_docs
    from kfp_ci.client import Client
    from kfp_ci.deploy._api import Api
    from kfp_ci.deploy._spec import fetch_spec, file_docs, spec_hash

    staging = kfp_server(execute=False, run_delay=0.0)
    production = kfp_server(execute=False)
    root = repo("add-square")
    package = root / "add-square.yaml"
    package.write_text(package.read_text() + "---\n" + yaml.safe_dump(PLATFORM_SPEC))
    (root / "pyproject.toml").write_text(PYPROJECT.format(staging=staging.url, production=production.url))
    monkeypatch.chdir(root)
    runner = CliRunner()
    done = runner.invoke(main, ["deploy", "add-square.yaml", "--env", "staging", "--run", "--wait"], env=ENV)
    assert done.exit_code == 0, done.output
    done = runner.invoke(main, ["promote", "add-square", "--from", "staging", "--to", "production"], env=ENV)
    assert done.exit_code == 0, done.output
    with Client(production.url) as client:
        api = Api(client)
        pid = api.find_pipeline("add-square", None)
        assert pid is not None
        [version] = client.list_pipeline_versions(pid).pipeline_versions
        raw = client.get_pipeline_version(pid, version.id).pipeline_spec
        assert raw["platform_spec"] == PLATFORM_SPEC  # type: ignore[index]
        mine = file_docs(load_docs(package.read_text()))
        assert len(mine) == 2 and spec_hash(fetch_spec(api, version)) == spec_hash(mine)
