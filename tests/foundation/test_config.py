"""Settings precedence and the [tool.kfp-ci] table."""

from __future__ import annotations

from pathlib import Path

import pytest

from kfp_ci._secrets import clear, redact
from kfp_ci.config import load_settings, read_secret
from kfp_ci.errors import ConfigError, KfpCiError

TABLE = """
[project]
name = "user-project"

[tool.kfp-ci]
host = "http://table.example"
namespace = "team-table"
experiment = "ci"

[[tool.kfp-ci.pipelines]]
source = "pipelines/train.py:train"
name = "train"
output = "build/train.yaml"
parameters = { epochs = 3, lr = 0.1 }
schedule = "0 0 3 * * *"
require = ["r2>=0.8"]
max-regression = { r2 = 0.02 }

[[tool.kfp-ci.pipelines]]
source = "pipelines/etl.py"
every = "6h"
latest = true
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(TABLE)
    nested = tmp_path / "pipelines" / "deep"
    nested.mkdir(parents=True)
    return tmp_path


def test_table_is_found_by_walking_up_and_paths_resolve_against_it(project: Path) -> None:
    settings = load_settings(env={}, cwd=project / "pipelines" / "deep")
    assert settings.project_file == project / "pyproject.toml"
    assert settings.host == "http://table.example"
    train, etl = settings.pipelines
    assert train.source_file == project / "pipelines" / "train.py"
    assert train.function == "train"
    assert train.output == project / "build" / "train.yaml"
    assert dict(train.parameters) == {"epochs": 3, "lr": 0.1}
    assert train.require == ("r2>=0.8",)
    assert dict(train.max_regression) == {"r2": 0.02}
    assert etl.function is None and etl.source_file == project / "pipelines" / "etl.py"
    assert etl.every == "6h" and etl.latest is True


def test_flags_win_over_env_which_win_over_the_table(project: Path) -> None:
    env = {"KFP_CI_HOST": "http://env.example", "KFP_CI_NAMESPACE": "team-env"}
    settings = load_settings({"host": "http://flag.example", "namespace": None}, env=env, cwd=project)
    assert settings.host == "http://flag.example"
    assert settings.namespace == "team-env"
    assert settings.experiment == "ci"


def test_kfp_own_variables_are_honoured(tmp_path: Path) -> None:
    token = tmp_path / "token"
    settings = load_settings(
        env={"KF_PIPELINES_ENDPOINT": "http://kfp.example", "KF_PIPELINES_SA_TOKEN_PATH": str(token)}, cwd=tmp_path
    )
    assert settings.host == "http://kfp.example"
    assert settings.token_file == token


def test_unknown_pipeline_key_names_key_and_file(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text('[tool.kfp-ci]\n[[tool.kfp-ci.pipelines]]\nsource = "a.py"\nschedul = "x"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(env={}, cwd=tmp_path)
    assert str(info.value).startswith(f"{path}: unknown key 'schedul' in [tool.kfp-ci] pipelines[0]")
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[[tool.kfp-ci.pipelines]]\nname = "x"\n', "pipelines[0] needs a 'source'"),
        ('[[tool.kfp-ci.pipelines]]\nsource = "a.py"\nschedule = "x"\nevery = "1h"\n',
         "sets both 'schedule' and 'every'"),
        ('timeout = "long"\n', "key 'timeout' must be a number, got 'long'"),
        ('[[tool.kfp-ci.pipelines]]\nsource = "a.py"\nlatest = "yes"\n',
         "key 'pipelines[0].latest' must be true or false"),
        ('[[tool.kfp-ci.pipelines]]\nsource = "a.py"\nname = "x"\n'
         '[[tool.kfp-ci.pipelines]]\nsource = "b.py"\nname = "x"\n',
         "declares pipeline name(s) twice: x"),
        ("host = [", "invalid TOML"),
    ],
)
def test_bad_tables_are_one_clear_line(tmp_path: Path, body: str, message: str) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.kfp-ci]\n" + body)
    with pytest.raises(ConfigError, match=None) as info:
        load_settings(env={}, cwd=tmp_path, config_file=tmp_path / "pyproject.toml")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_env_values_and_auth_modes(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="KFP_CI_INSECURE_SKIP_TLS_VERIFY must be true or false"):
        load_settings(env={"KFP_CI_INSECURE_SKIP_TLS_VERIFY": "maybe"}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="unknown auth mode 'kerberos'"):
        load_settings(env={"KFP_CI_AUTH": "kerberos"}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(env={}, cwd=tmp_path, config_file=tmp_path / "nope.toml")


def test_secrets_from_env_and_files_are_redacted_everywhere(tmp_path: Path) -> None:
    clear()
    settings = load_settings(env={"KFP_CI_PASSWORD": "hunter2-secret"}, cwd=tmp_path)
    assert settings.password == "hunter2-secret"
    assert "hunter2-secret" not in repr(settings)
    token_file = tmp_path / "token"
    token_file.write_text("tok-abcdef\n")
    assert read_secret(token_file, "token") == "tok-abcdef"
    err = KfpCiError("login failed for password hunter2-secret with tok-abcdef")
    assert str(err) == "login failed for password *** with ***"
    assert redact("x hunter2-secret y") == "x *** y"
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match=f"the token file {empty} is empty"):
        read_secret(empty, "token")
    clear()
