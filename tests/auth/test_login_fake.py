"""The login client against the independent fake gateway in ``fake_kubeflow`` (no kfp_ci.local code)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from kfp_ci import _secrets
from kfp_ci.cli import main

from .fake_kubeflow import PASSWORD, Fake


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("KFP_CI_", "KF_PIPELINES", "GITHUB_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    _secrets.clear()


def login(url: str, *args: str, password: str = PASSWORD, user: str = "user@example.com") -> Result:
    env = {"KFP_CI_USERNAME": user, "KFP_CI_PASSWORD": password, "KFP_CI_AUTH": "dex"}
    return CliRunner().invoke(main, ["login", "--host", url + "/pipeline", *args], env=env)


@pytest.mark.parametrize("kind", ["o2p-1.9.1", "o2p-1.9.0", "as-1.5", "as-1.7", "as-1.8"])
def test_login_each_generation(kind: str) -> None:
    with Fake(kind) as fake:
        result = login(fake.url)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"logged in to {fake.url}/pipeline as user@example.com (dex via ")


def test_split_cookies_and_ldap_connector() -> None:
    with Fake("o2p-1.9.1", big_cookie=True, connectors=("local", "ldap")) as fake:
        result = login(fake.url, "--dex-connector", "ldap", "--print-cookie", user="user")
    assert result.exit_code == 0, result.output
    cookie = result.stdout.strip().splitlines()[-1]
    assert cookie.startswith("oauth2_proxy_kubeflow_0=") and "; oauth2_proxy_kubeflow_1=" in cookie


@pytest.mark.parametrize(("kind", "status"), [("as-1.5", 200), ("as-1.7", 200), ("as-1.8", 401),
                                                  ("o2p-1.9.0", 401), ("o2p-1.9.1", 401)])
def test_wrong_password(kind: str, status: int) -> None:
    with Fake(kind) as fake:
        result = login(fake.url, password="nope-nope")
    assert result.exit_code == 3
    assert result.stderr.strip() == (
        f"kfp-ci: error: Dex rejected the credentials of user@example.com (HTTP {status}): Invalid Email Address "
        "and password. Check KFP_CI_USERNAME and the password")


def test_in_cluster_dex_redirect_names_the_setting() -> None:
    with Fake("o2p-1.9.1", in_cluster=True) as fake:
        result = login(fake.url)
    assert result.exit_code == 3
    assert result.stderr.strip() == (
        "kfp-ci: error: the login redirected to the in-cluster Dex URL http://dex.auth.svc.cluster.local:5556/dex/auth, "  # noqa: E501
        "which this runner cannot reach: oauth2-proxy has an absolute login_url or OIDC discovery on; set "
        'login_url = "/dex/auth" and skip_oidc_discovery = true (oidc-authservice: OIDC_AUTH_URL=/dex/auth)')


def test_lost_state_cookie_is_a_csrf_error() -> None:
    with Fake("as-1.7", drop_state=True) as fake:
        result = login(fake.url)
    assert result.exit_code == 3
    assert result.stderr.strip() == (
        "kfp-ci: error: the login failed a CSRF/state check at " + fake.url + "/authservice/oidc/callback (HTTP 400): "
        "CSRF check failed. This may happen if you opened the login form in more than 1 tabs. Please try to login "
        "again; a proxy between the runner and the gateway may drop cookies")


def test_plain_http_to_remote_host_refused() -> None:
    result = CliRunner().invoke(main, ["login", "--host", "http://kubeflow.example.com"],
                                env={"KFP_CI_TOKEN": "tok-123456"})
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "kfp-ci: error: refusing to send the bearer token over plain http to kubeflow.example.com: use https, or "
        "pass --allow-insecure-http if this load balancer really has no TLS")


def test_page_not_understood_saved_only_with_debug_dir(tmp_path: Path) -> None:
    with Fake("o2p-1.9.1") as fake:
        # the host's root answers the API's 401 {} on its own (the /apis/ path is an API route)
        result = CliRunner().invoke(main, ["login", "--host", fake.url + "/apis/x", "--debug-dir", str(tmp_path / "d")],
                                    env={"KFP_CI_USERNAME": "u@x.y", "KFP_CI_PASSWORD": PASSWORD, "KFP_CI_AUTH": "dex"})
        without = CliRunner().invoke(main, ["login", "--host", fake.url + "/apis/x"],
                                     env={"KFP_CI_USERNAME": "u@x.y", "KFP_CI_PASSWORD": PASSWORD,
                                          "KFP_CI_AUTH": "dex"})
    why = (f"kfp-ci: error: the login flow did not understand the page at {fake.url}/apis/x/ (HTTP 401, a 401 for an "
           "API route: the host URL must be the dashboard)")
    assert (result.exit_code, without.exit_code) == (3, 3)
    assert result.stderr.strip() == f"{why}; saved to {tmp_path / 'd' / 'login-page-1.html'}"
    assert (tmp_path / "d" / "login-page-1.html").read_text() == "{}"
    assert without.stderr.strip() == f"{why}; pass --debug-dir to save the page"


def test_off_host_redirect_not_followed() -> None:
    with Fake("o2p-1.9.1", off_host=True) as fake:
        result = login(fake.url)
    assert result.exit_code == 3
    assert result.stderr.strip() == (
        f"kfp-ci: error: the login redirected off {fake.url.split('//')[1]} to https://login.example.org/dex/auth: "
        "not following it with credentials (log in with a token or a cookie instead)")


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    d = tmp_path_factory.mktemp("tls")
    crt, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(crt)],
                   check=True, capture_output=True)
    return str(crt), str(key)


def test_tls_failure_suggests_ca_bundle_and_ca_bundle_works(cert: tuple[str, str]) -> None:
    with Fake("as-1.7", tls=cert) as fake:
        bad = login(fake.url)
        good = login(fake.url, "--ca-bundle", cert[0])
    assert bad.exit_code == 4
    assert bad.stderr.strip() == (f"kfp-ci: error: TLS verification failed for {fake.url.split('//')[1]}: pass "
                                  "--ca-bundle with the CA that signed its certificate")
    assert good.exit_code == 0, good.output
    assert good.stdout.startswith(f"logged in to {fake.url}/pipeline as user@example.com (dex via authservice")


def test_password_from_stdin_and_file(tmp_path: Path) -> None:
    pw_file = tmp_path / "pw"
    pw_file.write_text(PASSWORD + "\n")
    with Fake("o2p-1.9.1") as fake:
        env = {"KFP_CI_USERNAME": "user@example.com", "KFP_CI_AUTH": "dex"}
        stdin = CliRunner().invoke(main, ["login", "--host", fake.url, "--password-stdin"], env=env,
                                   input=PASSWORD + "\n")
        from_file = CliRunner().invoke(main, ["login", "--host", fake.url, "--password-file", str(pw_file)], env=env)
    assert stdin.exit_code == 0, stdin.output
    assert from_file.exit_code == 0, from_file.output


@pytest.mark.parametrize("kind", ["o2p-1.9.1", "o2p-1.9.0", "as-1.5", "as-1.7", "as-1.8"])
def test_path_prefix_absolute_locations_and_connector_page(kind: str) -> None:
    with Fake(kind, prefix="/kubeflow", absolute=True, connectors=("ldap", "local")) as fake:
        result = CliRunner().invoke(main, ["login", "--host", fake.url + "/kubeflow/pipeline"],
                                    env={"KFP_CI_USERNAME": "user@example.com", "KFP_CI_PASSWORD": PASSWORD,
                                         "KFP_CI_AUTH": "dex"})
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"logged in to {fake.url}/kubeflow/pipeline as user@example.com")


@pytest.mark.parametrize("kind", ["o2p-1.9.1", "o2p-1.9.0", "as-1.5", "as-1.7", "as-1.8"])
def test_session_expiring_mid_job_logs_in_again_once_and_replays(kind: str) -> None:
    from kfp_ci.auth import DexSession, client_from_settings
    from kfp_ci.config import Settings

    with Fake(kind) as fake:
        settings = Settings(host=fake.url + "/pipeline", auth="dex", username="user@example.com", password=PASSWORD)
        with client_from_settings(settings) as client:
            assert [e.display_name for e in client.list_experiments().experiments] == ["ci"]
            auth = client._http.auth
            assert isinstance(auth, DexSession) and auth.logins == 1
            fake.sessions.clear()  # the gateway forgets every session (24 h later, a restart...)
            # 401 {} (1.9.1 API route), 302 to Dex (1.9.0 and authservice): logged in again, the call replayed
            assert [e.display_name for e in client.list_experiments().experiments] == ["ci"]
            assert auth.logins == 2
        assert fake.api_calls == 2


def test_ldap_is_chosen_when_there_is_no_local_connector() -> None:
    # the "Username" prompt in the error box is the LDAP connector's: the walker followed the LDAP link
    with Fake("as-1.8", connectors=("github", "ldap")) as fake:
        result = login(fake.url, password="not-the-password", user="user")
    assert result.exit_code == 3
    assert result.stderr.strip() == (
        "kfp-ci: error: Dex rejected the credentials of user (HTTP 401): Invalid Username and password. "
        "Check KFP_CI_USERNAME and the password")


def test_unknown_connector_lists_those_offered() -> None:
    with Fake("o2p-1.9.1", connectors=("ldap", "local")) as fake:
        result = login(fake.url, "--dex-connector", "github")
    assert result.exit_code == 3
    assert result.stderr.strip() == ("kfp-ci: error: Dex offers no connector 'github': choose --dex-connector "
                                     "from: ldap (LDAP), local (Email)")


def test_secure_cookies_over_plain_http_name_the_cause() -> None:
    with Fake("o2p-1.9.1", secure_cookies=True) as fake:
        result = login(fake.url)
    assert result.exit_code == 3
    assert result.stderr.strip() == (
        f"kfp-ci: error: the login failed a CSRF/state check at {fake.url}/oauth2/callback (HTTP 403): Login Failed: "
        "Unable to find a valid CSRF token. Please try again; the gateway sets Secure cookies over plain http, "
        "which no client sends back: use the https URL (or turn off oauth2-proxy's cookie_secure / FORCE_HTTPS)")


def test_password_and_session_cookie_in_no_output_or_file(tmp_path: Path) -> None:
    debug = tmp_path / "debug"
    env = {"KFP_CI_USERNAME": "user@example.com", "KFP_CI_PASSWORD": PASSWORD, "KFP_CI_AUTH": "dex"}
    with Fake("o2p-1.9.1", big_cookie=True) as fake:
        runner = CliRunner()
        results = [
            runner.invoke(main, ["--verbose", "login", "--host", fake.url + "/pipeline", "--save",
                                 "--debug-dir", str(debug)], env=env),
            runner.invoke(main, ["--verbose", "login", "--host", fake.url + "/pipeline"],
                          env={**env, "KFP_CI_PASSWORD": "wrong-" + PASSWORD}),
            runner.invoke(main, ["--verbose", "login", "--host", fake.url + "/apis/x", "--debug-dir", str(debug)],
                          env=env),
        ]
        sessions = set(fake.sessions)
    assert [r.exit_code for r in results] == [0, 3, 3]
    assert sessions and list(debug.iterdir())
    cookie_parts = {v[i:i + 2000] for v in sessions for i in (0, 2000)} | sessions
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any("sessions" in p.parts for p in written)
    for blob in [r.output for r in results] + [p.read_text() for p in written]:
        assert PASSWORD not in blob
    for blob in [r.output for r in results] + [p.read_text() for p in written if "sessions" not in p.parts]:
        for value in cookie_parts:
            assert value not in blob


@pytest.mark.parametrize("env", [
    {"KFP_CI_AUTH": "dex", "KFP_CI_USERNAME": "u@example.com", "KFP_CI_PASSWORD": "pw-123456"},
    {"KFP_CI_COOKIE": "oauth2_proxy_kubeflow=abcdef123"},
])
def test_plain_http_refused_for_dex_and_cookie_before_any_request(env: dict[str, str]) -> None:
    # kubeflow.invalid never resolves: the refusal comes before any request
    result = CliRunner().invoke(main, ["login", "--host", "http://kubeflow.invalid/pipeline"], env=env)
    assert result.exit_code == 2
    what = "the Dex password" if "KFP_CI_PASSWORD" in env else "the session cookie"
    assert result.stderr.strip() == (
        f"kfp-ci: error: refusing to send {what} over plain http to kubeflow.invalid: use https, or pass "
        "--allow-insecure-http if this load balancer really has no TLS")


def test_allow_insecure_http_warns_and_loopback_or_https_pass_silently(capsys: pytest.CaptureFixture[str]) -> None:
    from kfp_ci.auth._dex import check_plain_http

    check_plain_http("http://127.0.0.1:1/pipeline", False, "the Dex password")  # loopback: fine
    check_plain_http("https://kf.example.com/pipeline", False, "the Dex password")  # TLS: fine
    assert capsys.readouterr().err == ""
    check_plain_http("http://kf.example.com/pipeline", True, "the Dex password")
    assert capsys.readouterr().err == (
        "kfp-ci: warning: sending the Dex password over plain http to kf.example.com (--allow-insecure-http)\n")


@pytest.mark.parametrize(("kind", "seen"), [("o2p-1.9.1", "HTTP 401 at {url}/pipeline/apis/v2beta1/healthz"),
                                            ("as-1.7", "HTTP 200, a login page at {url}/dex/auth/local/login")])
def test_no_credentials_for_a_gateway_is_one_line_from_any_command(kind: str, seen: str) -> None:
    from kfp_ci.auth import client_from_settings
    from kfp_ci.config import Settings
    from kfp_ci.errors import AuthError

    with Fake(kind) as fake, client_from_settings(Settings(host=fake.url + "/pipeline")) as client:
        with pytest.raises(AuthError) as err:
            client.list_experiments()
    assert str(err.value) == (
        f"the server requires a login ({seen.format(url=fake.url)}): set KFP_CI_USERNAME and KFP_CI_PASSWORD (Dex), "
        "KFP_CI_TOKEN (token) or KFP_CI_COOKIE (cookie), or run kfp-ci login --save")


def test_cookies_without_a_json_healthz_are_not_a_login() -> None:
    with Fake("o2p-1.9.1", api=False) as fake:
        result = login(fake.url)
    assert result.exit_code == 3
    assert result.stderr.strip() == (
        f"kfp-ci: error: the login set session cookies, but the authenticated healthz at {fake.url}/pipeline"
        "/apis/v2beta1/healthz answered HTTP 200 text/html, not JSON: check the host (the API is usually under "
        "/pipeline)")


def test_a_stale_cookie_is_refused_in_one_line() -> None:
    with Fake("o2p-1.9.1") as fake:
        result = CliRunner().invoke(main, ["login", "--host", fake.url + "/pipeline"],
                                    env={"KFP_CI_COOKIE": "oauth2_proxy_kubeflow=stale-value-123"})
    assert result.exit_code == 3
    assert result.stderr.strip() == ("kfp-ci: error: the server refused the session cookie (HTTP 401 on healthz): it "
                                     "expired or belongs to another host; log in again (kfp-ci login --print-cookie)")
    assert "stale-value-123" not in result.output
