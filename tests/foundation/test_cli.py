"""The CLI surface: help and version are cheap and offline; errors are one line with the right exit code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kfp_ci import __version__
from kfp_ci.cli import main

COMMANDS = ["compile", "login", "deploy", "run", "schedule", "wait", "status", "gate", "serve", "demo"]

_PROBE = r"""
import json, socket, sys
def _no_network(*a, **k):
    raise SystemExit("network access during --help")
socket.socket.connect = _no_network
socket.create_connection = _no_network
from kfp_ci.cli import main
try:
    main(sys.argv[1:], prog_name="kfp-ci")
except SystemExit as exc:
    code = exc.code
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"kfp", "starlette", "uvicorn", "kfp_server_api", "sklearn"})
print("@@" + json.dumps({"code": code, "heavy": heavy}))
"""


def _probe(*args: str) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, timeout=60)
    line = [x for x in proc.stdout.splitlines() if x.startswith("@@")]
    assert line, proc.stdout + proc.stderr
    result: dict[str, object] = json.loads(line[-1][2:])
    result["stdout"] = proc.stdout
    return result


@pytest.mark.parametrize("args", [["--help"], ["--version"], *[[c, "--help"] for c in COMMANDS]])
def test_help_and_version_import_no_heavy_module_and_stay_offline(args: list[str]) -> None:
    result = _probe(*args)
    assert result["code"] in (0, None)
    assert result["heavy"] == []
    assert "Usage:" in str(result["stdout"]) or __version__ in str(result["stdout"])


def test_version_names_the_program() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"kfp-ci {__version__}"


def test_python_dash_m_runs_the_cli() -> None:
    proc = subprocess.run([sys.executable, "-m", "kfp_ci", "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"kfp-ci {__version__}"


def test_every_command_is_listed_in_top_level_help() -> None:
    result = CliRunner().invoke(main, ["--help"])
    for command in COMMANDS:
        assert f"  {command} " in result.output


def test_config_error_is_one_line_exit_2_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "pyproject.toml"
    bad.write_text('[tool.kfp-ci]\nhots = "http://x"\n')
    result = CliRunner().invoke(main, ["--config", str(bad), "compile"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines == [f"kfp-ci: error: {bad}: unknown key 'hots' in [tool.kfp-ci] (allowed: auth, ca-bundle, "
                     "dex-connector, environments, experiment, host, ignore-sdk-version, namespace, out-dir, "
                     "pipelines, timeout, username, version-name)"]
    assert "Traceback" not in result.output


def test_verbose_shows_the_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "pyproject.toml"
    bad.write_text('[tool.kfp-ci]\nhots = "http://x"\n')
    result = CliRunner().invoke(main, ["--verbose", "--config", str(bad), "compile"])
    assert result.exit_code == 2
    assert "Traceback (most recent call last)" in result.output
    assert result.output.strip().splitlines()[-1].startswith("kfp-ci: error: ")


def test_bad_option_value_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["serve", "--compat", "3.0"])
    assert result.exit_code == 2
    assert "Invalid value for '--compat'" in result.output


def test_param_must_be_key_value() -> None:
    result = CliRunner().invoke(main, ["run", "p", "--param", "novalue"])
    assert result.exit_code == 2
    assert "'novalue' is not KEY=VALUE" in result.output


def test_password_stdin_must_not_be_empty() -> None:
    result = CliRunner().invoke(main, ["login", "--password-stdin", "--host", "http://127.0.0.1:9"], input="\n")
    assert result.exit_code == 2
    assert "kfp-ci: error: --password-stdin: standard input was empty" in result.output


def test_deploy_path_imports_no_kfp_no_server_and_parses_html_only_when_needed() -> None:
    code = ("import sys, kfp_ci.cli, kfp_ci.deploy, kfp_ci.auth, kfp_ci.client, kfp_ci.gate; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'kfp', 'starlette', 'uvicorn', 'bs4', 'sklearn'}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize(("args", "code", "stream", "text"), [
    (["--version"], 0, "stdout", f"kfp-ci {__version__}"),
    (["deploy", "no-such.yaml", "--host", "http://127.0.0.1:9"], 2, "stderr", "no-such.yaml: no such file"),
    (["deploy", "--wait", "--host", "http://127.0.0.1:9"], 2, "stderr", "--wait needs --run"),
    (["--no-such-flag"], 2, "stderr", "No such option"),
])
def test_the_console_entry_keeps_exit_codes_and_flushes_piped_output(args: list[str], code: int, stream: str,
                                                                      text: str) -> None:
    # run() ends the process with os._exit after the command: the status and every line must survive it
    proc = subprocess.run([sys.executable, "-m", "kfp_ci", *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == code, proc.stderr
    assert text in getattr(proc, stream)


def test_the_console_entry_runs_atexit_handlers_registered_by_the_command(tmp_path: Path) -> None:
    marker = tmp_path / "flushed.txt"
    script = (
        "import atexit, sys\n"
        "from kfp_ci import cli\n"
        "def late():\n"  # registered after run() started, as a library imported by a command would do
        f"    open({str(marker)!r}, 'w').write('ok')\n"
        "orig = cli.main\n"
        "def main(*a, **k):\n"
        "    atexit.register(late)\n"
        "    print('x' * 200000)\n"  # more than a pipe buffer: must be flushed before the quick exit
        "    return orig(*a, **k)\n"
        "cli.main = main\n"
        "sys.argv = ['kfp-ci', '--version']\n"
        "cli.run()\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("x") == 200000 and proc.stdout.rstrip().endswith(f"kfp-ci {__version__}")
    assert marker.read_text() == "ok"


def test_a_library_warning_is_one_console_line(kfp_server: Any) -> None:
    server = kfp_server(execute=False)
    env = {"SSL_CERT_FILE": "", "REQUESTS_CA_BUNDLE": "", "KFP_CI_CA_BUNDLE": "", "KFP_CI_CONFIG": ""}
    result = CliRunner().invoke(main, ["status", "--host", server.url, "--auth", "none",
                                       "--insecure-skip-tls-verify"], env=env)
    assert result.exit_code == 0, result.output
    warning_lines = [line for line in result.stderr.splitlines() if "verification is off" in line]
    assert warning_lines == ["kfp-ci: warning: TLS certificate verification is off (--insecure-skip-tls-verify)"]
    assert "UserWarning" not in result.stderr and ".py:" not in result.stderr
