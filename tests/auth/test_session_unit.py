"""Unit tests of the re-login Auth and the session cache with ``httpx.MockTransport`` (no sockets)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import httpx
import pytest

from kfp_ci import _secrets
from kfp_ci.auth import DexSession, Session, _cache
from kfp_ci.errors import AuthError

SIGN_IN = "<html><head><title>Sign In</title></head><body><form action='/oauth2/start'></form></body></html>"


@pytest.fixture(autouse=True)
def _cache_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    _secrets.clear()


class Gateway:
    """Accepts exactly one session value; records what each request carried."""

    def __init__(self, valid: str, deny: httpx.Response) -> None:
        self.valid = valid
        self.deny = deny
        self.seen: list[tuple[str | None, str | None, bytes]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.headers.get("cookie"), request.headers.get("authorization"), request.read()))
        if request.headers.get("cookie") == f"oauth2_proxy_kubeflow={self.valid}":
            return httpx.Response(200, json={"ok": True})
        return httpx.Response(self.deny.status_code, headers=self.deny.headers, content=self.deny.content)


def relogin_to(value: str, counter: list[int]) -> DexSession:
    def relogin() -> Session:
        counter.append(1)
        return Session({"oauth2_proxy_kubeflow": value}, "oauth2-proxy")

    return DexSession(Session({"oauth2_proxy_kubeflow": "expired-1"}, "cached"), relogin)


@pytest.mark.parametrize("deny", [
    httpx.Response(401, json={}),
    httpx.Response(403, text=SIGN_IN, headers={"content-type": "text/html"}),
    httpx.Response(200, text="<html><form method='post'><input name='login'><input type='password' name='password'>"
                   "</form></html>", headers={"content-type": "text/html"}),
], ids=["401-json", "403-sign-in", "200-dex-page"])
def test_expired_session_logs_in_once_and_replays_the_same_body(deny: httpx.Response) -> None:
    gateway = Gateway("fresh-2", deny)
    logins: list[int] = []
    auth = relogin_to("fresh-2", logins)
    with httpx.Client(transport=httpx.MockTransport(gateway), auth=auth) as http:
        response = http.post("http://127.0.0.1/apis/v2beta1/pipelines/upload", content=b"pipeline-bytes",
                             headers={"Authorization": "Bearer must-not-go"})
    assert response.json() == {"ok": True}
    assert logins == [1] and auth.logins == 1
    assert gateway.seen == [("oauth2_proxy_kubeflow=expired-1", None, b"pipeline-bytes"),
                            ("oauth2_proxy_kubeflow=fresh-2", None, b"pipeline-bytes")]


def test_a_refused_fresh_session_is_not_retried_again() -> None:
    gateway = Gateway("never", httpx.Response(401, json={}))
    logins: list[int] = []
    with httpx.Client(transport=httpx.MockTransport(gateway), auth=relogin_to("fresh-2", logins)) as http:
        response = http.get("http://127.0.0.1/apis/v2beta1/healthz")
    assert response.status_code == 401
    assert logins == [1] and len(gateway.seen) == 2


def test_rbac_403_json_is_not_a_login_page() -> None:
    gateway = Gateway("never", httpx.Response(403, text="RBAC: access denied"))
    logins: list[int] = []
    with httpx.Client(transport=httpx.MockTransport(gateway), auth=relogin_to("fresh-2", logins)) as http:
        assert http.get("http://127.0.0.1/apis/v2beta1/runs").status_code == 403
    assert logins == [] and len(gateway.seen) == 1


def test_saved_session_without_credentials_fails_in_one_line() -> None:
    gateway = Gateway("never", httpx.Response(401, json={}))
    auth = DexSession(Session({"oauth2_proxy_kubeflow": "expired-1"}, "cached"), None)
    with httpx.Client(transport=httpx.MockTransport(gateway), auth=auth) as http, pytest.raises(AuthError) as err:
        http.get("http://127.0.0.1/apis/v2beta1/healthz")
    assert str(err.value) == ("the saved session expired or was refused: run kfp-ci login --save again, or set "
                              "KFP_CI_USERNAME and KFP_CI_PASSWORD")


def test_cache_file_is_private_keyed_by_host_and_ignores_other_hosts(tmp_path: Path) -> None:
    host = "https://kf.example.com:8443/pipeline"
    path = _cache.save(host, {"oauth2_proxy_kubeflow_0": "part-a", "oauth2_proxy_kubeflow_1": "part-b"}, "u@x.y")
    assert path == tmp_path / "cache" / "kfp-ci" / "sessions" / f"{_cache.host_key(host)}.json"
    assert path.name.startswith("kf.example.com_8443_pipeline-")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert _cache.load(host + "/") == {"oauth2_proxy_kubeflow_0": "part-a", "oauth2_proxy_kubeflow_1": "part-b"}
    assert _secrets.redact("part-a part-b") == "*** ***"  # loaded values are registered secrets
    assert _cache.load("https://kf.example.com:8443/other") is None
    # a file copied over from another host is not trusted
    data = json.loads(path.read_text())
    data["host"] = "https://evil.example.com"
    path.write_text(json.dumps(data))
    assert _cache.load(host) is None
    path.write_text("{not json")
    assert _cache.load(host) is None
    _cache.forget(host)
    assert not path.exists()
    assert os.listdir(path.parent) == []


def test_threads_hitting_an_expired_session_log_in_once() -> None:
    import threading

    gateway = Gateway("fresh-2", httpx.Response(401, json={}))
    logins: list[int] = []
    entered = threading.Barrier(4)

    def slow_relogin() -> Session:
        logins.append(1)
        return Session({"oauth2_proxy_kubeflow": "fresh-2"}, "oauth2-proxy")

    auth = DexSession(Session({"oauth2_proxy_kubeflow": "expired-1"}, "cached"), slow_relogin)
    results: list[int] = []
    with httpx.Client(transport=httpx.MockTransport(gateway), auth=auth) as http:
        def call() -> None:
            entered.wait()
            results.append(http.get("http://127.0.0.1/apis/v2beta1/healthz").status_code)

        threads = [threading.Thread(target=call) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert results == [200] * 4
    assert logins == [1]
