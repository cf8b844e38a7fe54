"""[tool.kfp-ci.environments.<name>]: chosen with --env / KFP_CI_ENV, secrets from named variables, kfp-ci config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kfp_ci._secrets import clear
from kfp_ci.cli import main
from kfp_ci.config import load_settings
from kfp_ci.errors import ConfigError

TABLE = """
[tool.kfp-ci]
host = "http://shared.example"
experiment = "ci"
auth = "dex"
username = "ci@example.com"

[[tool.kfp-ci.pipelines]]
source = "train.py:train"
name = "train"
parameters = { epochs = 3, rate = 0.1 }
every = "6h"
require = ["r2>=0.8"]

[tool.kfp-ci.environments.staging]
host = "https://staging.example/pipeline"
password-env = "STAGING_PW"

[tool.kfp-ci.environments.production]
host = "https://prod.example/pipeline"
namespace = "ml-prod"
auth = "token"
token-env = "PROD_TOKEN"
experiment = "prod"

[tool.kfp-ci.environments.production.pipelines.train]
parameters = { epochs = 30 }
schedule = "0 0 2 * * *"
require = ["r2>=0.9"]
"""
PROD_SECRET = "prod-secret-value-123"
STAGING_SECRET = "staging-secret-value-456"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(TABLE)
    clear()
    return tmp_path


def test_without_an_environment_the_table_applies_and_lists_them(project: Path) -> None:
    settings = load_settings(env={}, cwd=project)
    assert settings.environment is None and settings.environments == ("staging", "production")
    assert settings.host == "http://shared.example"
    assert settings.pipelines[0].every == "6h"


def test_an_environment_overrides_settings_and_pipelines(project: Path) -> None:
    prod = load_settings(env={}, cwd=project, environment="production")
    assert (prod.environment, prod.host, prod.namespace, prod.auth, prod.experiment) == (
        "production", "https://prod.example/pipeline", "ml-prod", "token", "prod")
    assert prod.username == "ci@example.com"  # not overridden: from [tool.kfp-ci]
    train = prod.pipelines[0]
    assert dict(train.parameters) == {"epochs": 30, "rate": 0.1}  # merged key by key
    assert train.schedule == "0 0 2 * * *" and train.every is None  # schedule replaces every
    assert train.require == ("r2>=0.9",)
    staging = load_settings(env={"KFP_CI_ENV": "staging"}, cwd=project)
    assert staging.environment == "staging" and staging.host == "https://staging.example/pipeline"
    assert staging.pipelines[0].every == "6h" and staging.auth == "dex"


def test_precedence_flag_then_environment_then_variables_then_table(project: Path) -> None:
    env = {"KFP_CI_HOST": "http://from-variable.example", "KFP_CI_NAMESPACE": "ns-var"}
    prod = load_settings(env=env, cwd=project, environment="production")
    assert prod.host == "https://prod.example/pipeline"  # a stray KFP_CI_HOST cannot redirect production
    assert prod.sources["host"] == "[tool.kfp-ci.environments.production]"
    staging = load_settings(env=env, cwd=project, environment="staging")
    assert staging.namespace == "ns-var" and staging.sources["namespace"] == "env KFP_CI_NAMESPACE"
    flagged = load_settings({"host": "http://flag.example", "environment": "production"}, env=env, cwd=project)
    assert flagged.host == "http://flag.example" and flagged.sources["host"] == "flag"


def test_each_environment_reads_its_own_secret_variable(project: Path) -> None:
    env = {"PROD_TOKEN": PROD_SECRET, "STAGING_PW": STAGING_SECRET, "KFP_CI_TOKEN": "generic-token-789"}
    prod = load_settings(env=env, cwd=project, environment="production")
    assert prod.token == PROD_SECRET and prod.password is None
    staging = load_settings(env=env, cwd=project, environment="staging")
    assert staging.password == STAGING_SECRET
    assert staging.token == "generic-token-789"  # names no token-env: the usual KFP_CI_TOKEN
    # A named variable that is unset is not replaced by another cluster's secret.
    bare = load_settings(env={"KFP_CI_TOKEN": "generic-token-789"}, cwd=project, environment="production")
    assert bare.token is None


@pytest.mark.parametrize(("extra", "message"), [
    ('[tool.kfp-ci.environments.prod]\nhots = "x"\n', "unknown key 'hots' in [tool.kfp-ci.environments.prod]"),
    ('[tool.kfp-ci.environments.prod]\ntoken = "abc"\n', "unknown key 'token' in [tool.kfp-ci.environments.prod]"),
    ('[tool.kfp-ci.environments.prod]\ntoken-env = "not a name"\n', "token-env must name an environment variable"),
    ('[tool.kfp-ci.environments.prod]\nauth = "magic"\n', "auth 'magic' is not one of"),
    ('[tool.kfp-ci.environments.prod.pipelines.train]\nsource = "x.py"\n', "unknown key 'source'"),
    ('[tool.kfp-ci.environments.prod.pipelines.nope]\nschedule = "@daily"\n', "names pipeline 'nope'"),
    ('[tool.kfp-ci.environments.all]\nhost = "x"\n', "environment name 'all' is reserved"),
    # the same value rules as [tool.kfp-ci] itself
    ('[tool.kfp-ci.environments.prod]\ntimeout = -5\n',
     "key 'environments.prod.timeout' must be a positive number of seconds, got -5"),
    ('[tool.kfp-ci.environments.prod]\ntimeout = nan\n', "must be a positive number of seconds, got nan"),
    ('[tool.kfp-ci.environments.prod]\ninsecure-skip-tls-verify = "yes"\n', "must be true or false"),
])
def test_bad_environment_tables_are_config_errors(project: Path, extra: str, message: str) -> None:
    (project / "pyproject.toml").write_text(TABLE + extra)
    with pytest.raises(ConfigError, match=None) as caught:
        load_settings(env={}, cwd=project, environment="prod" if "nope" in extra else None)
    assert message in str(caught.value)


def test_unknown_environment_is_one_line_exit_2(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    result = CliRunner().invoke(main, ["config", "--env", "prodution"], env={"KFP_CI_CONFIG": ""})
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"kfp-ci: error: unknown environment 'prodution' in {project / 'pyproject.toml'}: "
        "[tool.kfp-ci.environments] declares staging, production"]
    result = CliRunner().invoke(main, ["deploy", "--dry-run"], env={"KFP_CI_CONFIG": "", "KFP_CI_ENV": "qa"})
    assert result.exit_code == 2 and "unknown environment 'qa' (KFP_CI_ENV)" in result.output


def test_config_command_prints_sources_and_masks_secrets(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    env = {"KFP_CI_CONFIG": "", "PROD_TOKEN": PROD_SECRET, "KFP_CI_HOST": "", "KFP_CI_TOKEN": ""}
    result = CliRunner().invoke(main, ["config", "--env", "production"], env=env)
    assert result.exit_code == 0, result.output
    assert PROD_SECRET not in result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()}
    assert "https://prod.example/pipeline" in lines["host"] and "[tool.kfp-ci.environments.production]" in lines["host"]
    assert "***" in lines["token"] and "env PROD_TOKEN" in lines["token"]
    assert "ci@example.com" in lines["username"] and "([tool.kfp-ci])" in lines["username"]
    result = CliRunner().invoke(main, ["config", "--env", "production", "-n", "other", "-o", "json"], env=env)
    data = json.loads(result.stdout)
    assert data["namespace"] == {"value": "other", "source": "flag"}
    assert data["pipelines.train"]["value"]["parameters"] == {"epochs": 30, "rate": 0.1}
    assert data["environment"]["value"] == "production"
