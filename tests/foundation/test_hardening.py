"""Hardening of the CLI (issue 15), one test per item that failed the review: config, secrets, TLS flags, saved
sessions, proxies and ``-v`` after the command. Malformed values of every command: test_bad_input.py."""

from __future__ import annotations

import os
import socket
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kfp_ci import _secrets
from kfp_ci.cli import main
from kfp_ci.config import find_pyproject, load_settings
from kfp_ci.errors import ConfigError, KfpCiError


@pytest.fixture(autouse=True)
def _clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in ("KFP_CI_HOST", "KFP_CI_TOKEN", "KFP_CI_PASSWORD", "KFP_CI_COOKIE", "KFP_CI_USERNAME",
                 "KFP_CI_CONFIG", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "KFP_CI_CA_BUNDLE", "HTTP_PROXY",
                 "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    yield
    _secrets.clear()


def kfp_ci(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env=env or {})
    return result.exit_code, result.stdout, result.stderr


# 1 ------------------------------------------------------------------------------------------------ config
def test_an_unparsable_child_pyproject_is_an_error_not_the_parents_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.kfp-ci]\nhost = "http://parent.example"\n')
    child = tmp_path / "child"
    child.mkdir()
    (child / "pyproject.toml").write_text('[tool.kfp-ci]\nnamespace = "a"\nnamespace = "b"\n')
    with pytest.raises(ConfigError) as info:
        find_pyproject(child)
    assert str(info.value).startswith(f"{child / 'pyproject.toml'}:3:") and "invalid TOML" in str(info.value)
    assert info.value.exit_code == 2
    # a pyproject.toml that does not mention kfp-ci is not ours: the walk goes on to the parent's table
    (child / "pyproject.toml").write_text("[project\nname = 'x'\n")
    assert find_pyproject(child) == tmp_path / "pyproject.toml"


# 2 ----------------------------------------------------------------------------------------------- secrets
def test_a_multi_line_secret_is_masked_line_by_line_also_in_one_line_errors() -> None:
    _secrets.register("first-line\nb-SECRET-second")
    # an error message joins lines with spaces: each line is still masked
    assert "b-SECRET-second" not in str(KfpCiError("Illegal header value b'Bearer first-line\nb-SECRET-second'"))
    assert _secrets.redact("x first-line y b-SECRET-second") == "x *** y ***"


def test_clean_strips_one_trailing_newline_and_refuses_other_control_characters() -> None:
    assert _secrets.clean("tok-abcdef\n") == "tok-abcdef"
    assert _secrets.clean("tok-abcdef\r\n") == "tok-abcdef"
    for bad in ("tok-abc\ndef", "tok-abcdef\n\n", "tok\tabcdef", "tok-abc\x00def"):
        with pytest.raises(ValueError) as info:
            _secrets.clean(bad)
        assert "abc" not in str(info.value)


def test_under_github_actions_every_line_gets_its_own_add_mask(capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    _secrets.register("pw-line-one\npw-line-two")
    out = capsys.readouterr().out.splitlines()
    assert "::add-mask::pw-line-one" in out and "::add-mask::pw-line-two" in out
    assert all(line.startswith("::add-mask::") for line in out)  # no line of the secret printed bare


# 7 ----------------------------------------------------------------------------------------------------- TLS
def test_ssl_cert_file_in_the_environment_does_not_contradict_insecure_skip_tls_verify(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = load_settings({"insecure_skip_tls_verify": True, "ca_bundle": None}, env={"SSL_CERT_FILE": str(ca)},
                             cwd=tmp_path)
    assert settings.insecure_skip_tls_verify
    code, _out, err = kfp_ci("status", "--host", "https://127.0.0.1:9", "--insecure-skip-tls-verify",
                             env={"SSL_CERT_FILE": str(ca)})
    assert "contradict" not in err and code == 4, err  # reached the (refused) connection
    code, _out, err = kfp_ci("status", "--host", "https://127.0.0.1:9", "--insecure-skip-tls-verify",
                             "--ca-bundle", str(ca))
    assert code == 2 and "contradict each other" in err


# 8 ----------------------------------------------------------------------------------------- saved sessions
@pytest.mark.parametrize("command", [["status"], ["wait", "run-1"], ["run", "p"], ["schedule", "p", "--every", "1h"],
                                     ["gate", "run-1", "--require", "r2>=0.5"], ["deploy", "p.yaml"]])
def test_a_refused_saved_session_is_removed_by_every_command(kfp_server: Callable[..., Any], tmp_path: Path,
                                                             command: list[str]) -> None:
    from kfp_ci.auth import _cache

    (tmp_path / "p.yaml").write_text("pipelineInfo:\n  name: p\nroot:\n  dag:\n    tasks: {}\n"
                                     "schemaVersion: 2.1.0\n")
    srv = kfp_server(auth="dex", execute=False)
    path = _cache.save(srv.url, {"oauth2_proxy_kubeflow": "stale-session-value"}, None)
    code, out, err = kfp_ci(*command, "--host", srv.url)
    assert code == 3 and "saved session expired or was refused" in err, out + err
    assert not path.exists()
    assert "stale-session-value" not in out + err


def test_loose_session_folders_are_tightened_to_0700(tmp_path: Path) -> None:
    from kfp_ci.auth import _cache

    sessions = tmp_path / "cache" / "kfp-ci" / "sessions"
    sessions.mkdir(parents=True, mode=0o755)
    os.chmod(sessions, 0o755)
    os.chmod(sessions.parent, 0o755)
    path = _cache.save("https://kf.example.com", {"c": "value-1234"}, None)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700


# 9 ------------------------------------------------------------------------------------------------ proxies
class _Proxy:
    """A listening socket standing in for an HTTP proxy: counts the connections it gets (and answers 502)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.connections = 0
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            conn.close()


def test_a_token_for_plain_http_loopback_never_goes_to_the_proxy(kfp_server: Callable[..., Any]) -> None:
    proxy = _Proxy()
    srv = kfp_server(auth="token", tokens={"tok-proxy-SECRET-1": "user@example.com"}, execute=False)
    env = {"HTTP_PROXY": proxy.url, "ALL_PROXY": proxy.url, "KFP_CI_TOKEN": "tok-proxy-SECRET-1"}
    code, out, err = kfp_ci("status", "--host", srv.url, env=env)
    assert code == 0, out + err
    assert proxy.connections == 0
    # A non-loopback plain-http host with credentials (even allowed): refused rather than sent through the proxy.
    code, out, err = kfp_ci("status", "--host", "http://kfp.example.test", "--allow-insecure-http", env=env)
    assert code == 2 and "through the proxy" in err and "NO_PROXY" in err, out + err
    assert proxy.connections == 0 and "tok-proxy-SECRET-1" not in out + err


def test_a_localhost_subdomain_is_loopback_only_if_it_resolves_to_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    from kfp_ci.auth._dex import is_loopback

    def resolve(address: str) -> Callable[..., list[Any]]:
        return lambda *_a, **_k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, 0))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve("203.0.113.7"))
    assert not is_loopback("kfp.localhost")
    monkeypatch.setattr(socket, "getaddrinfo", resolve("127.0.0.1"))
    assert is_loopback("kfp.localhost")
    assert is_loopback("localhost") and is_loopback("::1") and not is_loopback("kfp.example.com")


# 10 ------------------------------------------------------------------------------------------------- verbose
@pytest.mark.parametrize("command", ["compile", "deploy", "status", "login", "run"])
def test_verbose_after_the_command_works_like_before_it(tmp_path: Path, command: str) -> None:
    bad = tmp_path / "pyproject.toml"
    bad.write_text('[tool.kfp-ci]\nhots = "http://x"\n')
    args = {"run": ["p"]}.get(command, [])
    for order in (["-v", command, *args], [command, *args, "-v"], [command, "--verbose", *args]):
        code, _out, err = kfp_ci(*order)
        assert code == 2 and "Traceback (most recent call last)" in err, (order, err)
        assert err.strip().splitlines()[-1].startswith("kfp-ci: error: ")
    code, _out, err = kfp_ci(command, *args)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_an_existing_loose_debug_folder_is_tightened_to_0700(tmp_path: Path) -> None:
    import httpx

    from kfp_ci.auth._dex import _Walker

    debug = tmp_path / "debug"
    debug.mkdir(mode=0o755)
    os.chmod(debug, 0o755)
    with httpx.Client() as http:
        walker = _Walker(http, "https://kf.example.com", "u@example.com", "pw-debug-1234", None, debug, False)
        page = httpx.Response(200, text="<html>odd page pw-debug-1234</html>",
                              request=httpx.Request("GET", "https://kf.example.com/odd"))
        error = walker.not_understood(page, "no form")
    assert "saved to" in str(error)
    assert stat.S_IMODE(debug.stat().st_mode) == 0o700
    saved = next(debug.iterdir())
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600 and "pw-debug-1234" not in saved.read_text()
