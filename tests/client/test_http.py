"""Hosts, server detection, loud failures, error bodies and auth of kfp_ci.client, over httpx.MockTransport.

Answers are built from the reference facts (shared/reference/kfp-rest-api.md, sections 1.4 and 1.11).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from kfp_ci import __version__
from kfp_ci.client import BearerToken, Client, CookieAuth, TokenFile
from kfp_ci.errors import (
    ApiError,
    AuthError,
    Conflict,
    KfpCiError,
    NotFound,
    NotKfpError,
    PermissionDenied,
    ServerError,
    Unauthenticated,
    UsageError,
)

from .fakes import make_client

HEALTHZ_217 = {"commit_sha": "9d1f", "tag_name": "2.17.0", "multi_user": True, "pipeline_store": "database"}
UI_HEALTHZ = {"buildDate": "x", "frontendCommitHash": "x", "frontendTagName": "2.5.0", "apiServerReady": True,
              "apiServerCommitHash": "x", "apiServerTagName": "2.5.0", "apiServerMultiUser": False,
              "multi_user": False}
DASHBOARD_HTML = "<!DOCTYPE html><html><head><title>Kubeflow Central Dashboard</title></head><body></body></html>"
LOGIN_HTML = ('<!DOCTYPE html><html><head><title>dex</title></head><body><form method="post">'
              '<input type="text" name="login"><input type="password" name="password">'
              "<button>Log In</button></form></body></html>")


def html(text: str, status: int = 200) -> httpx.Response:
    return httpx.Response(status, text=text, headers={"content-type": "text/html; charset=utf-8"})


def routes(table: dict[str, Callable[[httpx.Request], httpx.Response]]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        for prefix, answer in table.items():
            if request.url.path.startswith(prefix):
                return answer(request)
        return httpx.Response(404, text="404 page not found")

    return handler


# ------------------------------------------------------------------------------------------------ hosts
@pytest.mark.parametrize("host", ["kubeflow.example.com", "kubeflow.example.com/pipeline", "ftp://x", ""])
def test_host_without_http_scheme_is_a_usage_error(host: str) -> None:
    with pytest.raises(UsageError) as err:
        Client(host)
    assert err.value.exit_code == 2
    assert "http" in str(err.value) or "host" in str(err.value)


@pytest.mark.parametrize(("given", "expected"), [
    ("https://kf.example.com/pipeline/", "https://kf.example.com/pipeline"),
    ("http://ml-pipeline.kubeflow:8888", "http://ml-pipeline.kubeflow:8888"),
    ("http://ml-pipeline:8888/apis/v2beta1/", "http://ml-pipeline:8888"),
])
def test_host_is_normalized(given: str, expected: str) -> None:
    assert Client(given).host == expected


def test_host_with_credentials_is_refused() -> None:
    with pytest.raises(UsageError, match="credentials"):
        Client("https://user:pw@kf.example.com")


# -------------------------------------------------------------------------------------------- detection
def test_one_healthz_detects_v2_version_and_multi_user() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=HEALTHZ_217)

    client = make_client(handler)
    assert seen == []  # lazy: constructing the client sends nothing
    info = client.server
    assert (info.api, info.version, info.multi_user, info.pipeline_store) == ("v2beta1", "2.17.0", True, "database")
    assert client.server is info
    assert [r.url.path for r in seen] == ["/apis/v2beta1/healthz"]
    assert client.request_count == 1
    assert seen[0].headers["user-agent"] == f"kfp-ci/{__version__}"


def test_pre_214_healthz_sent_as_text_plain_is_read() -> None:
    body = json.dumps({"commit_sha": "x", "tag_name": "2.5.0", "multi_user": False})
    client = make_client(lambda r: httpx.Response(200, text=body, headers={"content-type": "text/plain"}))
    assert client.server.version == "2.5.0"


def test_kfp1_is_v1beta1_only_when_the_v2_healthz_is_404() -> None:
    client = make_client(routes({
        "/apis/v1beta1/healthz": lambda r: httpx.Response(200, json={"commit_sha": "x", "tag_name": "1.8.5",
                                                                      "multi_user": False}),
    }))
    assert (client.server.api, client.server.version) == ("v1beta1", "1.8.5")


def test_ui_server_healthz_shape_is_understood() -> None:
    client = make_client(lambda r: httpx.Response(200, json=UI_HEALTHZ))
    info = client.server
    assert (info.api, info.version, info.multi_user, info.via_ui) == ("v2beta1", "2.5.0", False, True)


def test_ui_server_whose_api_server_is_not_ready_fails_loudly() -> None:
    client = make_client(lambda r: httpx.Response(200, json={**UI_HEALTHZ, "apiServerReady": False}))
    with pytest.raises(ServerError, match="apiServerReady"):
        client.server  # noqa: B018


def test_dashboard_root_gets_pipeline_added() -> None:
    client = make_client(routes({
        "/pipeline/apis/v2beta1/": lambda r: httpx.Response(200, json=HEALTHZ_217),
        "/": lambda r: html(DASHBOARD_HTML),
    }), host="https://kubeflow.example.com")
    assert client.server.version == "2.17.0"
    assert client.host == "https://kubeflow.example.com/pipeline"


def test_dashboard_without_kfp_says_add_pipeline() -> None:
    client = make_client(lambda r: html(DASHBOARD_HTML), host="https://kubeflow.example.com/pipeline")
    with pytest.raises(NotKfpError) as err:
        client.server  # noqa: B018
    assert "got the Kubeflow dashboard: add /pipeline to the host" in str(err.value)
    assert err.value.exit_code == 4


def test_login_page_with_status_200_is_an_auth_error() -> None:
    client = make_client(lambda r: html(LOGIN_HTML))
    with pytest.raises(AuthError) as err:
        client.server  # noqa: B018
    assert "got a login page: the session is missing or expired" in str(err.value)
    assert err.value.exit_code == 3


def test_login_page_on_a_later_call_is_an_auth_error() -> None:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            return httpx.Response(200, json=HEALTHZ_217)
        return html(LOGIN_HTML)

    client = make_client(handler)
    with pytest.raises(AuthError, match="login page"):
        client.list_pipelines()


def test_non_json_2xx_is_not_kfp() -> None:
    client = make_client(lambda r: httpx.Response(200, text="hello from nginx", headers={"content-type": "text/plain"}))
    with pytest.raises(NotKfpError, match="not JSON"):
        client.server  # noqa: B018


def test_json_that_is_not_healthz_is_not_kfp() -> None:
    client = make_client(lambda r: httpx.Response(200, json={"status": "ok"}))
    with pytest.raises(ServerError, match="not a KFP healthz"):
        client.server  # noqa: B018


def test_unreachable_host_is_a_connect_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    client = make_client(handler)
    with pytest.raises(KfpCiError) as err:
        client.server  # noqa: B018
    assert type(err.value).__name__ == "ConnectError"
    assert "cannot reach http://kfp.test" in str(err.value) and "refused" in str(err.value)


# ------------------------------------------------------------------------------------------ error bodies
def _fail_with(status: int, **kwargs: object) -> Client:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/healthz"):
            return httpx.Response(200, json=HEALTHZ_217)
        return httpx.Response(status, **kwargs)  # type: ignore[arg-type]

    return make_client(handler)


def test_gateway_v2_error_takes_details_message_first() -> None:
    body = {"code": 6, "message": "internal chain: rpc error: already exists",
            "details": [{"@type": "type.googleapis.com/google.rpc.Status", "code": 6,
                         "message": "Failed to create a new experiment. The name ci already exists."}]}
    with pytest.raises(Conflict) as err:
        _fail_with(409, json=body).get_experiment("e1")
    assert err.value.status == 409
    assert "The name ci already exists." in str(err.value)
    assert "internal chain" not in str(err.value)


def test_gateway_v1_error_shape() -> None:
    body = {"error": "Validate failed.: Invalid input", "code": 3, "message": "Validate failed.: Invalid input",
            "details": [{"@type": "type.googleapis.com/api.Error", "error_message": "In single-user mode, no refs.",
                         "error_details": "x"}]}
    with pytest.raises(ApiError) as err:
        _fail_with(400, json=body).get_run("r1")
    assert err.value.status == 400 and "In single-user mode, no refs." in str(err.value)


def test_upload_error_shape_and_pre_21_duplicate_500_is_conflict() -> None:
    body = {"error_message": "Failed to create a pipeline. Already exist error: The name p already exists.",
            "error_details": "x"}
    with pytest.raises(Conflict) as err:
        _fail_with(500, json=body).get_pipeline("p1")
    assert err.value.status == 500 and "already exists" in str(err.value)


def test_plain_text_rbac_denied_is_permission_denied() -> None:
    with pytest.raises(PermissionDenied) as err:
        _fail_with(403, text="RBAC: access denied", headers={"content-type": "text/plain"}).list_pipelines()
    assert "RBAC: access denied" in str(err.value)
    assert err.value.exit_code == 3


def test_401_is_unauthenticated_and_404_not_found() -> None:
    with pytest.raises(Unauthenticated, match="Jwt issuer is not configured"):
        _fail_with(401, text="Jwt issuer is not configured").get_run("r")
    with pytest.raises(NotFound):
        _fail_with(404, json={"code": 5, "message": "Run r not found"}).get_run("r")


def test_oauth2_proxy_sign_in_page_with_403_is_a_login_error() -> None:
    with pytest.raises(AuthError, match="login page"):
        _fail_with(403, text="<html><body>Sign in with Dex</body></html>",
                   headers={"content-type": "text/html"}).list_runs()


# ---------------------------------------------------------------------------------------------- auth
def _echo() -> tuple[list[httpx.Request], Callable[[httpx.Request], httpx.Response]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=HEALTHZ_217, headers={"set-cookie": "gw_session=abc; Path=/"})

    return seen, handler


def test_bearer_token_never_goes_with_a_cookie() -> None:
    seen, handler = _echo()
    client = make_client(handler, auth=BearerToken("tok-1234567"))
    client.get_kfp_healthz()
    client.get_kfp_healthz()  # the gateway set a cookie after the first call
    for request in seen:
        assert request.headers["authorization"] == "Bearer tok-1234567"
        assert "cookie" not in request.headers


def test_cookie_auth_sends_the_cookie_and_no_bearer() -> None:
    seen, handler = _echo()
    client = make_client(handler, auth=CookieAuth("oauth2_proxy_kubeflow=sess-98765"))
    client.get_kfp_healthz()
    assert seen[0].headers["cookie"] == "oauth2_proxy_kubeflow=sess-98765"
    assert "authorization" not in seen[0].headers


def test_token_file_is_re_read_on_every_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = tmp_path / "token"
    token.write_text("first-token\n")
    monkeypatch.setenv("KF_PIPELINES_SA_TOKEN_PATH", str(token))
    seen, handler = _echo()
    client = make_client(handler, auth=TokenFile())
    client.get_kfp_healthz()
    token.write_text("rotated-token")
    client.get_kfp_healthz()
    assert [r.headers["authorization"] for r in seen] == ["Bearer first-token", "Bearer rotated-token"]


def test_missing_token_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(AuthError, match=r"cannot read the token file .*nope"):
        TokenFile(tmp_path / "nope")


def test_tokens_never_appear_in_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, text=f"bad token {request.headers['authorization']}")

    client = make_client(handler, auth=BearerToken("supersecret-token-value"))
    with pytest.raises(Unauthenticated) as err:
        client.server  # noqa: B018
    assert "supersecret-token-value" not in str(err.value)
    assert "***" in str(err.value)


def test_an_auth_hook_can_refresh_once_on_a_login_page() -> None:
    """The extension point the dashboard login uses: an httpx.Auth that reads the body and replays."""

    class Relogin(httpx.Auth):
        requires_response_body = True

        def __init__(self) -> None:
            self.logins = 0

        def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
            request.headers["Cookie"] = f"session={self.logins}"
            response = yield request
            if "html" in response.headers.get("content-type", ""):
                self.logins += 1
                request.headers["Cookie"] = f"session={self.logins}"
                yield request

    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers.get("cookie") == "session=0":
            return html(LOGIN_HTML)
        return httpx.Response(200, json=HEALTHZ_217)

    auth = Relogin()
    client = make_client(handler, auth=auth)
    assert client.server.version == "2.17.0"
    assert auth.logins == 1


def test_insecure_skip_tls_verify_warns() -> None:
    with pytest.warns(UserWarning, match="TLS certificate verification is off"):
        Client("https://kf.example.com", verify=False)


def test_missing_ca_bundle_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="CA bundle"):
        Client("https://kf.example.com", verify=str(tmp_path / "missing.pem"))


def test_kfp1_behind_its_ui_server_is_v1beta1() -> None:
    """The 1.x UI serves its page for unknown paths, v2beta1/healthz included."""
    client = make_client(routes({
        "/apis/v1beta1/healthz": lambda r: httpx.Response(200, json={"commit_sha": "x", "tag_name": "1.8.5",
                                                                      "multi_user": False}),
        "/": lambda r: html("<html><head><title>Kubeflow Pipelines</title></head><body></body></html>"),
    }), host="http://ml-pipeline-ui.kubeflow")
    assert client.server.api == "v1beta1"


def test_get_pipeline_id_falls_back_to_a_filtered_list_without_the_names_route() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/healthz"):
            return httpx.Response(200, json=HEALTHZ_217)
        if "/pipelines/names/" in path:
            return httpx.Response(404, text="404 page not found")
        if path == "/apis/v2beta1/pipelines":
            assert '"key":"name"' in request.url.params["filter"]
            return httpx.Response(200, json={"pipelines": [{"pipeline_id": "p9", "display_name": "train"}]})
        return httpx.Response(500)

    assert make_client(handler).get_pipeline_id("train") == "p9"


def test_a_1x_version_means_v1beta1_even_when_the_v2_healthz_answers() -> None:
    client = make_client(lambda r: httpx.Response(200, json={"commit_sha": "x", "tag_name": "1.8.5",
                                                              "multi_user": False}))
    assert client.server.api == "v1beta1"


def test_a_redirect_loop_is_an_auth_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"location": "/oauth2/start?rd=/"})

    with pytest.raises(AuthError, match="redirected too many times"):
        make_client(handler).server  # noqa: B018


def test_importing_the_client_loads_no_heavy_module() -> None:
    import subprocess
    import sys

    code = ("import sys, kfp_ci.client; "
            "print(sorted(m for m in ('yaml', 'bs4', 'kfp', 'starlette', 'uvicorn', 'certifi') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


HEALTHZ_JSON = {"commit_sha": "abc", "tag_name": "2.17.0", "multi_user": False}


def _redirecting_gateway(seen: list[tuple[str, str | None, str | None]]) -> Callable[[httpx.Request], httpx.Response]:
    """A gateway that moves the API once on the same host (308) and once across hosts (302)."""

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url.copy_with(query=None)), request.headers.get("cookie"),
                     request.headers.get("authorization")))
        if request.url.host == "kf.example.com" and request.url.path == "/apis/v2beta1/healthz":
            return httpx.Response(308, headers={"Location": "/v2/apis/v2beta1/healthz"})
        if request.url.host == "kf.example.com" and request.url.path == "/apis/v2beta1/experiments":
            return httpx.Response(302, headers={"Location": "https://elsewhere.example.com/apis/v2beta1/experiments"})
        if request.url.host == "elsewhere.example.com":
            return httpx.Response(200, json={})
        if request.headers.get("cookie") != "session=s3cr3t" and request.headers.get("authorization") is None:
            return httpx.Response(401, json={})
        return httpx.Response(200, json=HEALTHZ_JSON)

    return handler


@pytest.mark.parametrize("auth", ["cookie", "dex-session", "bearer"])
def test_credentials_follow_a_same_host_redirect_but_never_another_host(auth: str) -> None:
    from kfp_ci.auth import DexSession, Session

    seen: list[tuple[str, str | None, str | None]] = []
    credentials: httpx.Auth = {"cookie": CookieAuth("session=s3cr3t"), "bearer": BearerToken("t0ken"),
                               "dex-session": DexSession(Session({"session": "s3cr3t"}, "cached"), None)}[auth]
    gateway = httpx.MockTransport(_redirecting_gateway(seen))
    client = Client("https://kf.example.com", auth=credentials, transport=gateway)
    assert client.get_kfp_healthz().version == "2.17.0"
    expected = (None, "Bearer t0ken") if auth == "bearer" else ("session=s3cr3t", None)
    assert seen[:2] == [("https://kf.example.com/apis/v2beta1/healthz", *expected),
                        ("https://kf.example.com/v2/apis/v2beta1/healthz", *expected)]  # httpx alone drops the cookie
    seen.clear()
    client.list_experiments()
    assert seen[0][0] == "https://kf.example.com/apis/v2beta1/experiments"
    assert seen[1] == ("https://elsewhere.example.com/apis/v2beta1/experiments", None, None)
