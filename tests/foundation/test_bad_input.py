"""Every command with malformed input: exit 2, ONE line on stderr, no traceback, no secret anywhere in the output.

The values are the ones a hardening review found crashing or leaking (issue 15): numbers that are not numbers
of seconds, a host that is not a URL, a CA file that is not PEM, tokens and cookies no HTTP header can carry,
secrets with a line break inside, crons that never fire, empty schedules and a pyproject.toml that is not TOML.
Nothing here needs a server: each is refused before the first request (127.0.0.1:9 would refuse a connection).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from kfp_ci import _secrets
from kfp_ci.cli import main

HOST = "http://127.0.0.1:9"
SECRETS = {  # every secret value (and every line of the multi-line ones) must never be printed
    "token": "tok-SECRET-4f1a9c",
    "password": "pw-SECRET-77b2",
    "multi_token": "tok-line-one\ntok-SECRET-line-two",
    "multi_cookie": "session=ck-line-one\nck-SECRET-line-two",
    "multi_password": "pw-line-one\npw-SECRET-line-two",
    "non_ascii_token": "tök-SECRET-ünïcode",
}
# Commands that take the connection options, with the argument each needs.
CONNECTED = {
    "login": [],
    "deploy": ["p.yaml"],
    "run": ["p"],
    "schedule": ["p", "--every", "1h"],
    "wait": ["run-1"],
    "status": [],
    "gate": ["run-1", "--require", "r2>=0.5"],
}
SETTINGS_COMMANDS = {"compile": [], **CONNECTED}
PACKAGE = "pipelineInfo:\n  name: p\nroot:\n  dag:\n    tasks: {}\nschemaVersion: 2.1.0\nsdkVersion: kfp-2.7.0\n"


@pytest.fixture(autouse=True)
def _workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.yaml").write_text(PACKAGE)
    (tmp_path / "multi-token").write_text(SECRETS["multi_token"] + "\n")
    (tmp_path / "multi-cookie").write_text(SECRETS["multi_cookie"] + "\n")
    (tmp_path / "not-pem.crt").write_text("this is not a certificate\n")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in ("KFP_CI_HOST", "KFP_CI_TOKEN", "KFP_CI_PASSWORD", "KFP_CI_COOKIE", "KFP_CI_USERNAME", "KFP_CI_CONFIG",
                 "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "KFP_CI_CA_BUNDLE", "HTTP_PROXY", "HTTPS_PROXY",
                 "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    yield tmp_path
    _secrets.clear()


def run(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, args, env=env or {})
    return result.exit_code, result.stdout, result.stderr


def check(args: list[str], env: dict[str, str] | None = None, *, says: str, github: bool = False) -> str:
    code, out, err = run(args, env)
    lines = err.strip().splitlines()
    assert code == 2, (args, out, err)
    assert len(lines) == 1 and lines[0].startswith("kfp-ci: error: "), (args, err)
    assert says in lines[0], (args, lines[0])
    assert "Traceback" not in out + err and "internal error" not in err
    printed = "\n".join(line for line in (out + err).splitlines() if not line.startswith("::add-mask::"))
    for secret in SECRETS.values():
        for part in [secret, *secret.splitlines()]:
            assert part not in printed, (args, part)
    if not github:
        assert out == ""
    return lines[0]


def _cases() -> Iterator[tuple[str, list[str], dict[str, str], str]]:
    for command, extra in CONNECTED.items():
        base = [command, *extra]
        for value in ("-1", "nan", "inf", "0"):
            yield command, [*base, "--host", HOST, "--http-timeout", value], {}, "positive, finite number of seconds"
        yield command, [*base, "--host", "http://[::1"], {}, "is not a valid URL"
        yield command, [*base, "--host", "https://127.0.0.1:9", "--ca-bundle", "not-pem.crt"], \
            {"KFP_CI_TOKEN": SECRETS["token"]}, "must hold PEM certificates"
        yield command, [*base, "--host", HOST], {"KFP_CI_TOKEN": SECRETS["non_ascii_token"]}, "non-ASCII"
        yield command, [*base, "--host", HOST, "--token-file", "multi-token"], {}, "line break"
        yield command, [*base, "--host", HOST, "--cookie-file", "multi-cookie"], {}, "line break"
        yield command, [*base, "--host", HOST], {"KFP_CI_USERNAME": "u@example.com",
                                                 "KFP_CI_PASSWORD": SECRETS["multi_password"]}, "line break"
    for command, extra in (("deploy", ["p.yaml", "--run", "--wait"]), ("run", ["p", "--wait"]), ("wait", ["r"])):
        for value in ("nan", "inf", "-5"):
            yield command, [command, *extra, "--host", HOST, "--timeout", value], {}, "number of seconds"
    yield "compile", ["compile", "--timeout", "nan"], {}, "number of seconds"
    for command, extra in (("deploy", ["p.yaml"]), ("schedule", ["p"])):
        flag = "--schedule"
        yield command, [command, *extra, "--host", HOST, flag, "0 0 31 2 *"], {}, "never fires"
        yield command, [command, *extra, "--host", HOST, flag, ""], {}, "--schedule is empty"
        yield command, [command, *extra, "--host", HOST, "--every", ""], {}, "--every is empty"
        yield command, [command, *extra, "--host", HOST, "--every", "1000000d"], {}, "longer than 366 days"
    yield "config", ["config", "--host", "http://[::1"], {}, "is not a valid URL"
    yield "config", ["config", "--http-timeout", "nan"], {}, "positive, finite number of seconds"
    yield "config", ["config", "--env", "nosuch"], {}, "unknown environment 'nosuch'"
    yield "config", ["config", "--host", HOST], {"KFP_CI_TOKEN": SECRETS["multi_token"]}, "line break"
    yield "promote", ["promote", "p", "--from", "staging", "--to", "nosuch"], {}, "unknown environment"
    yield "promote", ["promote", "p", "--from", "a", "--to", "b", "--timeout", "nan"], {}, "number of seconds"
    yield "plan", ["plan", "--base", "main", "--http-timeout", "inf"], {}, "positive, finite number of seconds"
    yield "serve", ["serve", "--port", "99999"], {}, "--port"
    yield "serve", ["serve", "--session-ttl", "nan"], {}, "--session-ttl"
    yield "demo", ["demo", "--port", "-1"], {}, "--port"


CASES = list(_cases())


@pytest.mark.parametrize(("command", "args", "env", "says"), CASES,
                         ids=[f"{c}-{i}" for i, (c, _a, _e, _s) in enumerate(CASES)])
def test_malformed_input_is_one_line_exit_2(command: str, args: list[str], env: dict[str, str], says: str) -> None:
    check(args, env, says=says)


def test_every_command_is_covered() -> None:
    from kfp_ci.cli import _COMMANDS

    assert {c for c, *_ in CASES} == set(_COMMANDS)


@pytest.mark.parametrize("command", sorted(SETTINGS_COMMANDS))
@pytest.mark.parametrize(("table", "says"), [
    ('[tool.kfp-ci]\nhost = "a"\nhost = "b"\n', "pyproject.toml:3:"),   # a duplicate key
    ("[tool.kfp-ci]\nhost = \n", "pyproject.toml:2:"),
    ("[tool.kfp-ci]\ntimeout = -5\n", "'timeout' must be a positive number of seconds"),
    ("[tool.kfp-ci]\ntimeout = nan\n", "'timeout' must be a positive number of seconds"),
])
def test_a_bad_pyproject_is_one_line_naming_file_line_and_column(_workdir: Path, command: str, table: str,
                                                                 says: str) -> None:
    """A child folder's broken pyproject.toml is an error, never skipped for the parent's [tool.kfp-ci]."""
    (_workdir / "pyproject.toml").write_text('[tool.kfp-ci]\nhost = "http://parent.example"\n')
    child = _workdir / "child"
    child.mkdir()
    (child / "pyproject.toml").write_text(table)
    (child / "p.yaml").write_text(PACKAGE)
    import os

    os.chdir(child)
    line = check([command, *SETTINGS_COMMANDS[command]], says=says)
    assert str(child / "pyproject.toml") in line


def test_secrets_with_a_line_break_are_masked_line_by_line_under_github_actions() -> None:
    """The runner masks one line per ::add-mask::; each line of the password gets its own, none leaks."""
    env = {"GITHUB_ACTIONS": "true", "KFP_CI_USERNAME": "u@example.com", "KFP_CI_PASSWORD": SECRETS["multi_password"]}
    check(["login", "--host", HOST], env, says="KFP_CI_PASSWORD holds a line break", github=True)
    _secrets.clear()  # a fresh process: nothing registered (and masked) yet
    _code, out, _err = run(["login", "--host", HOST], env)
    masks = [line.removeprefix("::add-mask::") for line in out.splitlines() if line.startswith("::add-mask::")]
    assert set(SECRETS["multi_password"].splitlines()) <= set(masks)


def test_a_token_file_with_one_trailing_newline_is_fine(_workdir: Path) -> None:
    (_workdir / "token").write_text(SECRETS["token"] + "\n")
    code, out, err = run(["status", "--host", HOST, "--token-file", "token"])
    assert code == 4 and "cannot reach" in err  # got as far as the (refused) connection
    assert SECRETS["token"] not in out + err


def test_a_password_on_stdin_with_a_control_character_is_refused_without_echo() -> None:
    result = CliRunner().invoke(main, ["login", "--host", HOST, "--username", "u@example.com", "--password-stdin"],
                                input="pw-SECRET\tinside\n")
    assert result.exit_code == 2 and "control character" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "pw-SECRET" not in result.output


@pytest.mark.parametrize(("args", "says"), [(["--bogus"], "No such option '--bogus'"),
                                            (["--config"], "'--config' requires an argument"),
                                            (["nosuchcommand"], "No such command 'nosuchcommand'")])
def test_a_bad_option_before_the_command_is_one_line_too(args: list[str], says: str) -> None:
    check(args, says=says)
