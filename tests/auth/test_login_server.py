"""`kfp-ci login` and the client's Dex session against the embedded server's login emulation, every shape."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kfp_ci import _secrets
from kfp_ci.cli import main

PASSWORD = "12341234"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("KFP_CI_", "KF_PIPELINES", "GITHUB_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    _secrets.clear()


def run_login(url: str, *args: str, password: str = PASSWORD, user: str = "user@example.com",
              env: dict[str, str] | None = None) -> Any:
    full = {"KFP_CI_USERNAME": user, "KFP_CI_PASSWORD": password, "KFP_CI_AUTH": "dex", **(env or {})}
    return CliRunner().invoke(main, ["login", "--host", url + "/pipeline", *args], env=full)


SHAPES = [
    pytest.param({"dex_shape": "oauth2-proxy", "kubeflow_version": "1.9.1"}, id="oauth2-proxy-1.9.1"),
    pytest.param({"dex_shape": "oauth2-proxy", "kubeflow_version": "1.9.0"}, id="oauth2-proxy-1.9.0-approval"),
    pytest.param({"dex_shape": "authservice", "kubeflow_version": "1.8", "dex_url_shape": "new"}, id="authservice-1.8"),
    pytest.param({"dex_shape": "authservice", "kubeflow_version": "1.5", "dex_url_shape": "old"}, id="authservice-old"),
    pytest.param({"dex_shape": "authservice", "kubeflow_version": "1.7", "dex_url_shape": "new",
                  "connectors": ("local", "ldap")}, id="authservice-1.7-connectors"),
    pytest.param({"dex_shape": "oauth2-proxy", "connectors": ("ldap", "local")}, id="oauth2-proxy-connectors"),
]


@pytest.mark.parametrize("shape", SHAPES)
def test_login_every_shape(kfp_server: Any, shape: dict[str, Any]) -> None:
    srv = kfp_server(auth="dex", execute=False, multi_user=True, **shape)
    result = run_login(srv.url)
    assert result.exit_code == 0, result.output
    assert "logged in to" in result.output and "as user@example.com" in result.output
    assert "namespaces: kubeflow-user-example-com" in result.output


def test_ldap_connector_split_cookies_saved_and_reused(kfp_server: Any, tmp_path: Path) -> None:
    srv = kfp_server(auth="dex", execute=False, connectors=("local", "ldap"))
    result = run_login(srv.url, "--dex-connector", "ldap", "--save", "--print-cookie", user="user")
    assert result.exit_code == 0, result.output
    cookie_line = result.stdout.strip().splitlines()[-1]
    assert "oauth2_proxy_kubeflow_0=" in cookie_line and "oauth2_proxy_kubeflow_1=" in cookie_line
    assert "_csrf" not in cookie_line
    files = list((tmp_path / "cache" / "kfp-ci" / "sessions").glob("127.0.0.1_*_pipeline-*.json"))
    assert len(files) == 1 and stat.S_IMODE(files[0].stat().st_mode) == 0o600
    # a later command without credentials reuses the saved session
    reuse = CliRunner().invoke(main, ["login", "--host", srv.url + "/pipeline"], env={"KFP_CI_AUTH": "dex"})
    assert reuse.exit_code == 0, reuse.output
    assert "as user@example.com" in reuse.output


def test_print_cookie_masks_first_under_github_actions(kfp_server: Any) -> None:
    srv = kfp_server(auth="dex", execute=False)
    result = run_login(srv.url, "--print-cookie", env={"GITHUB_ACTIONS": "true"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    cookie = lines[-1]
    assert cookie.startswith("oauth2_proxy_kubeflow=")
    assert f"::add-mask::{cookie}" in lines[: lines.index(cookie)]


def test_session_expiring_mid_job_logs_in_again_once(kfp_server: Any) -> None:
    from kfp_ci.auth import DexSession, client_from_settings
    from kfp_ci.config import Settings

    srv = kfp_server(auth="dex", execute=False, dex_shape="authservice", kubeflow_version="1.8")
    settings = Settings(host=srv.url + "/pipeline", auth="dex", username="user@example.com", password=PASSWORD)
    with client_from_settings(settings) as client:
        client.list_experiments()
        auth = client._http.auth
        assert isinstance(auth, DexSession) and auth.logins == 1
        srv.expire_sessions()
        client.list_experiments()  # would be the Dex HTML page with status 200 without the re-login
        assert auth.logins == 2


@pytest.mark.parametrize(("shape", "status"), [
    pytest.param({"dex_shape": "authservice", "dex_url_shape": "old", "kubeflow_version": "1.5"}, 200, id="200"),
    pytest.param({"dex_shape": "oauth2-proxy"}, 401, id="401"),
])
def test_wrong_password_one_line(kfp_server: Any, shape: dict[str, Any], status: int) -> None:
    srv = kfp_server(auth="dex", execute=False, **shape)
    result = run_login(srv.url, password="wrong-password-xyz")
    assert result.exit_code == 3
    assert result.stderr.strip() == (
        f"kfp-ci: error: Dex rejected the credentials of user@example.com (HTTP {status}): Invalid Email Address "
        "and password. Check KFP_CI_USERNAME and the password")


def test_unknown_connector_lists_offered(kfp_server: Any) -> None:
    srv = kfp_server(auth="dex", execute=False, connectors=("local", "ldap"))
    result = run_login(srv.url, "--dex-connector", "github")
    assert result.exit_code == 3
    assert result.stderr.strip() == ("kfp-ci: error: Dex offers no connector 'github': choose --dex-connector "
                                     "from: ldap (LDAP), local (Email)")


def test_token_mode(kfp_server: Any) -> None:
    srv = kfp_server(auth="token", execute=False, tokens={"tok-abcdef-123": "user@example.com"})
    ok = CliRunner().invoke(main, ["login", "--host", srv.url], env={"KFP_CI_TOKEN": "tok-abcdef-123"})
    assert ok.exit_code == 0, ok.output
    assert "as user@example.com (bearer token;" in ok.stdout
    bad = CliRunner().invoke(main, ["login", "--host", srv.url], env={"KFP_CI_TOKEN": "tok-wrong-999"})
    assert bad.exit_code == 3, bad.output
    assert bad.stderr.strip() == ("kfp-ci: error: the server refused the bearer token (HTTP 401 on healthz): check "
                                  "KFP_CI_TOKEN or the token file (expired, or an issuer/audience the gateway does "
                                  "not trust)")


def test_no_secret_in_any_output_or_file(kfp_server: Any, tmp_path: Path) -> None:
    secret_pw = "pw-Secret-9876"
    srv = kfp_server(auth="dex", execute=False, users={"user@example.com": secret_pw})
    debug = tmp_path / "debug"
    good = run_login(srv.url, "--save", "--debug-dir", str(debug), password=secret_pw)
    bad = run_login(srv.url, "--debug-dir", str(debug), password=secret_pw + "x")
    # a page the walker does not understand (the API's 401 {} under /api/) is dumped to --debug-dir
    odd = CliRunner().invoke(main, ["login", "--host", srv.url + "/api", "--debug-dir", str(debug)],
                             env={"KFP_CI_USERNAME": "user@example.com", "KFP_CI_PASSWORD": secret_pw,
                                  "KFP_CI_AUTH": "dex"})
    # a real process with --verbose (tracebacks on): the same failure, nothing leaks either
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("KFP_CI_", "GITHUB_"))}
    env.update({"KFP_CI_USERNAME": "user@example.com", "KFP_CI_PASSWORD": secret_pw + "x", "KFP_CI_AUTH": "dex"})
    proc = subprocess.run([sys.executable, "-m", "kfp_ci", "--verbose", "login", "--host", srv.url],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 3 and "Traceback" in proc.stderr
    assert good.exit_code == 0 and bad.exit_code == 3 and odd.exit_code == 3
    assert "saved to" in odd.stderr and list(debug.iterdir())
    from kfp_ci.auth import _cache

    cookies = _cache.load(srv.url + "/pipeline")
    assert cookies
    blobs = [good.output.encode(), bad.output.encode(), odd.output.encode(), proc.stdout.encode(),
             proc.stderr.encode()]
    blobs += [p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and "cache" not in p.parts]
    for blob in blobs:
        assert secret_pw.encode() not in blob
        for value in cookies.values():
            assert value.encode() not in blob


def test_session_ttl_ends_sessions_and_client_logs_in_again(kfp_server: Any) -> None:
    import time

    from kfp_ci.auth import DexSession, client_from_settings
    from kfp_ci.config import Settings

    srv = kfp_server(auth="dex", execute=False, session_ttl=0.4)
    settings = Settings(host=srv.url, auth="dex", username="user@example.com", password=PASSWORD)
    with client_from_settings(settings) as client:
        client.list_pipelines()
        time.sleep(0.5)
        client.list_pipelines()  # 401 {} from the API route, then one new login and the replay
        auth = client._http.auth
        assert isinstance(auth, DexSession) and auth.logins == 2


@pytest.mark.parametrize("compat", ["2.17", "1.8"])
def test_auto_mode_without_login_server_uses_no_auth(kfp_server: Any, compat: str) -> None:
    srv = kfp_server(execute=False, compat=compat)
    result = CliRunner().invoke(main, ["login", "--host", srv.url],
                                env={"KFP_CI_USERNAME": "user@example.com", "KFP_CI_PASSWORD": PASSWORD})
    assert result.exit_code == 0, result.output
    assert "(no auth;" in result.stdout


def test_cookie_mode_with_a_printed_cookie(kfp_server: Any) -> None:
    srv = kfp_server(auth="dex", execute=False, dex_shape="authservice", kubeflow_version="1.7")
    first = run_login(srv.url, "--print-cookie")
    assert first.exit_code == 0, first.output
    cookie = first.stdout.strip().splitlines()[-1]
    assert cookie.startswith("authservice_session=") and "oidc_state_csrf" not in cookie
    again = CliRunner().invoke(main, ["login", "--host", srv.url + "/pipeline"], env={"KFP_CI_COOKIE": cookie})
    assert again.exit_code == 0, again.output
    assert "as user@example.com (cookie;" in again.stdout
    srv.expire_sessions()
    expired = CliRunner().invoke(main, ["login", "--host", srv.url + "/pipeline"], env={"KFP_CI_COOKIE": cookie})
    assert expired.exit_code == 3, expired.output


def test_saved_session_refused_is_one_line_and_relogin_refreshes_cache(kfp_server: Any) -> None:
    srv = kfp_server(auth="dex", execute=False)
    host = srv.url + "/pipeline"
    assert run_login(srv.url, "--save").exit_code == 0
    from kfp_ci.auth import _cache

    before = _cache.load(host)
    srv.expire_sessions()
    stale = CliRunner().invoke(main, ["login", "--host", host], env={"KFP_CI_AUTH": "dex"})
    assert stale.exit_code == 3
    assert stale.stderr.strip() == ("kfp-ci: error: the saved session expired or was refused: run kfp-ci login "
                                    "--save again, or set KFP_CI_USERNAME and KFP_CI_PASSWORD")
    assert _cache.load(host) is None  # a refused cache is forgotten
    assert run_login(srv.url, "--save").exit_code == 0
    srv.expire_sessions()
    from kfp_ci.auth import client_from_settings
    from kfp_ci.config import Settings

    settings = Settings(host=host, auth="dex", username="user@example.com", password=PASSWORD)
    with client_from_settings(settings) as client:
        client.list_pipelines()  # cached cookie refused -> one login -> cache rewritten
    after = _cache.load(host)
    assert after and after != before


@pytest.mark.parametrize("shape", [{"dex_shape": "authservice", "kubeflow_version": "1.8"},
                                   {"dex_shape": "oauth2-proxy", "connectors": ("local", "ldap")}])
def test_printed_cookie_works_for_the_real_kfp_client(kfp_server: Any, shape: dict[str, Any]) -> None:
    import kfp
    srv = kfp_server(auth="dex", execute=False, **shape)
    args = ["--print-cookie"] + (["--dex-connector", "ldap"] if "connectors" in shape else [])
    result = run_login(srv.url, *args)
    assert result.exit_code == 0, result.output
    cookie = result.stdout.strip().splitlines()[-1]
    client = kfp.Client(host=srv.url + "/pipeline", cookies=cookie)
    client.create_experiment("from-a-printed-cookie")
    names = [e.display_name for e in client.list_experiments().experiments or []]
    assert "from-a-printed-cookie" in names


@pytest.mark.parametrize("shape", ["oauth2-proxy", "authservice"])
def test_no_credentials_for_a_login_server_says_what_to_set(kfp_server: Any, shape: str) -> None:
    srv = kfp_server(auth="dex", execute=False, dex_shape=shape)
    result = CliRunner().invoke(main, ["login", "--host", srv.url])
    assert result.exit_code == 3
    # 1.9.1+: API routes answer 401 {}; authservice: a 302 to Dex, so a 200 HTML password page
    seen = "HTTP 401" if shape == "oauth2-proxy" else "HTTP 200, a login page"
    where = f"{srv.url}/apis/v2beta1/healthz" if shape == "oauth2-proxy" else f"{srv.url}/dex/auth/local/login"
    assert result.stderr.strip() == (
        f"kfp-ci: error: the server requires a login ({seen} at {where}): set KFP_CI_USERNAME and KFP_CI_PASSWORD "
        "(Dex), KFP_CI_TOKEN (token) or KFP_CI_COOKIE (cookie), or run kfp-ci login --save")


def test_connector_asked_for_but_dex_has_only_local(kfp_server: Any) -> None:
    srv = kfp_server(auth="dex", execute=False)
    result = run_login(srv.url, "--dex-connector", "ldap")
    assert result.exit_code == 3
    assert result.stderr.strip() == ("kfp-ci: error: Dex offers no connector 'ldap': choose --dex-connector from: "
                                     "local (the only one)")


def test_multi_user_login_checks_the_configured_namespace(kfp_server: Any) -> None:
    srv = kfp_server(auth="dex", execute=False, multi_user=True,
                     profiles={"user@example.com": ("team-a",), "other@example.com": ("team-b",)})
    mine = run_login(srv.url, env={"KFP_CI_NAMESPACE": "team-a"})
    theirs = run_login(srv.url, env={"KFP_CI_NAMESPACE": "team-b"})
    assert (mine.exit_code, theirs.exit_code) == (0, 0), mine.output + theirs.output
    assert mine.stdout.splitlines()[1:] == ["namespaces: team-a", "namespace team-a: allowed"]
    assert theirs.stdout.splitlines()[1:] == ["namespaces: team-a"]
    assert theirs.stderr.strip() == ("kfp-ci: warning: namespace team-b: KFP refused access for user@example.com "
                                     "(check --namespace / KFP_CI_NAMESPACE and the profile's contributors)")


def test_healthz_falls_back_to_v1beta1_on_kfp_1_8(kfp_server: Any) -> None:
    srv = kfp_server(auth="dex", execute=False, compat="1.8", dex_shape="authservice", kubeflow_version="1.5",
                     dex_url_shape="old")
    result = run_login(srv.url)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"logged in to {srv.url}/pipeline as user@example.com (dex via authservice; KFP ")
    assert "API v1beta1)" in result.stdout.splitlines()[0]


def test_dex_mode_against_an_open_server_says_no_login_is_needed(kfp_server: Any) -> None:
    srv = kfp_server(execute=False)
    result = run_login(srv.url)
    assert result.exit_code == 3
    assert result.stderr.strip() == (f"kfp-ci: error: {srv.url}/pipeline needs no login (its API answers without a "
                                     "session): use --auth none (or auto)")


def test_token_file_is_read_again_when_it_rotates(kfp_server: Any, tmp_path: Path) -> None:
    from kfp_ci.auth import client_from_settings
    from kfp_ci.config import Settings
    from kfp_ci.errors import Unauthenticated

    srv = kfp_server(auth="token", execute=False, tokens={"tok-new-222222": "user@example.com"})
    token_file = tmp_path / "token"
    token_file.write_text("tok-old-111111\n")
    with client_from_settings(Settings(host=srv.url, token_file=token_file)) as client:
        with pytest.raises(Unauthenticated):
            client.list_experiments()
        token_file.write_text("tok-new-222222\n")  # the kubelet rotated the projected token
        assert client.list_experiments().experiments == ()
