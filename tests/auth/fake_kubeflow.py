"""A second, independent fake Kubeflow gateway (Starlette under uvicorn in a thread), from the reference facts only.

It shares no code with ``kfp_ci.local``: oauth2-proxy 1.9.1 (403 sign-in page, API 401 ``{}``), oauth2-proxy
1.9.0 (straight to Dex, Grant Access page), authservice 1.0-1.5 (old Dex URLs, ``/login/oidc``) and 1.7
(new Dex URLs, ``oidc_state_csrf``), plus broken gateways: an in-cluster Dex redirect and a state cookie that
gets lost, an off-host Dex, Secure cookies over http. The KFP API behind it: healthz and a list of experiments.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlencode, urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

USER, PASSWORD = "user@example.com", "12341234"
NAMES = {"local": "Email", "ldap": "LDAP", "github": "GitHub"}  # Dex connector display names


@dataclass
class Exchange:
    """One request (raw path with query, headers, body) and the answer the fake gives it."""

    path: str
    headers: dict[str, str]
    body: bytes = b""
    response: Response = field(default_factory=lambda: Response(status_code=500))


class Fake:
    def __init__(self, kind: str, *, big_cookie: bool = False, in_cluster: bool = False, drop_state: bool = False,
                 connectors: tuple[str, ...] = ("local",), off_host: bool = False,
                 tls: tuple[str, str] | None = None, prefix: str = "", absolute: bool = False,
                 secure_cookies: bool = False, api: bool = True) -> None:
        self.kind = kind
        self.big_cookie = big_cookie
        self.in_cluster = in_cluster
        self.drop_state = drop_state
        self.connectors = connectors
        self.off_host = off_host
        self.prefix = prefix  # the gateway lives under this path (e.g. /kubeflow)
        self.absolute = absolute  # Location headers carry scheme and host
        self.secure_cookies = secure_cookies  # oauth2-proxy cookie_secure (FORCE_HTTPS=true), even over http
        self.api = api  # False: a gateway with no KFP behind it (every path is the dashboard)
        self.api_calls = 0  # authenticated KFP API calls answered
        self.sessions: set[str] = set()
        self.reqs: dict[str, dict[str, str]] = {}
        self.codes: dict[str, str] = {}
        self.scheme = "https" if tls else "http"
        self.url = ""

        async def endpoint(request: Request) -> Response:
            raw = request.scope["raw_path"].decode() + ("?" + request.url.query if request.url.query else "")
            exchange = Exchange(raw, {k.lower(): v for k, v in request.headers.items()}, await request.body())
            self.handle(exchange, request.method)
            return exchange.response

        app = Starlette(routes=[Route("/{path:path}", endpoint, methods=["GET", "POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", lifespan="off",
                                ssl_certfile=tls[0] if tls else None, ssl_keyfile=tls[1] if tls else None)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Fake:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the fake gateway did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"{self.scheme}://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    @property
    def callback(self) -> str:
        return {"o2p-1.9.1": "/oauth2/callback", "o2p-1.9.0": "/oauth2/callback", "as-1.5": "/login/oidc"}.get(
            self.kind, "/authservice/oidc/callback")

    # ------------------------------------------------------------------------------------------------ answers
    def reply(self, h: Exchange, status: int, body: str, ctype: str = "text/html",
              location: str | None = None, cookies: tuple[str, ...] = ()) -> None:
        response = Response(body, status_code=status, media_type=ctype)
        if location:
            if location.startswith("/"):
                location = (self.url if self.absolute else "") + self.prefix + location
            response.headers["Location"] = location
        for c in cookies:
            response.headers.append("Set-Cookie",
                                    c + "; Path=/; HttpOnly" + ("; Secure" if self.secure_cookies else ""))
        h.response = response

    def handle(self, h: Exchange, method: str) -> None:
        parts = urlsplit(h.path)
        path = parts.path.removeprefix(self.prefix) if parts.path.startswith(self.prefix + "/") else parts.path
        q = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        jar: SimpleCookie = SimpleCookie(h.headers.get("cookie", ""))
        cookies = {k: m.value for k, m in jar.items()}
        form: dict[str, str] = {}
        if method == "POST":
            raw = h.body.decode()
            form = {k: v[0] for k, v in parse_qs(raw).items()}
        if path.startswith("/dex/"):
            self.dex(h, method, path, q, form, parts.query)
        elif path == "/oauth2/start":
            self.oauth_start(h, q.get("rd", "/"))
        elif path == self.callback:
            self.finish(h, q, cookies)
        elif self.authenticated(cookies):
            if not self.api:
                self.reply(h, 200, "<html><title>Kubeflow Central Dashboard</title></html>")
            elif path.endswith("/apis/v2beta1/healthz"):
                self.reply(h, 200, json.dumps({"commit_sha": "x", "tag_name": "2.5.0", "multi_user": False}),
                           "application/json")
            elif path.endswith("/apis/v2beta1/experiments"):  # the KFP API behind the gateway: a list call
                self.api_calls += 1
                self.reply(h, 200, json.dumps({"experiments": [{"experiment_id": "e1", "display_name": "ci"}],
                                               "total_size": 1}), "application/json")
            else:
                self.reply(h, 200, "<html><title>Kubeflow Pipelines</title></html>")
        else:
            self.deny(h, path)

    def authenticated(self, cookies: dict[str, str]) -> bool:
        if self.kind.startswith("o2p"):
            value = cookies.get("oauth2_proxy_kubeflow") or "".join(
                cookies[f"oauth2_proxy_kubeflow_{i}"] for i in range(9) if f"oauth2_proxy_kubeflow_{i}" in cookies)
        else:
            value = cookies.get("authservice_session", "")
        return value in self.sessions

    def deny(self, h: Exchange, path: str) -> None:
        if self.kind == "o2p-1.9.1":
            if "/apis/" in path or "/api/" in path:
                self.reply(h, 401, "{}", "application/json")
                return
            self.reply(h, 403, "<html><head><title>Sign In</title></head><body>"
                       f'<form method="GET" action="{self.prefix}/oauth2/start">'
                       f'<input type="hidden" name="rd" value="{path}">'
                       "<button type=\"submit\">Sign in with Dex</button></form></body></html>")
        elif self.kind == "o2p-1.9.0":  # skip_provider_button: straight to Dex; JSON Accept (isAjax) gets 401 {}
            if h.headers.get("accept") == "application/json":
                self.reply(h, 401, "{}", "application/json")
                return
            self.oauth_start(h, path)
        else:
            state = secrets.token_hex(8)
            query = urlencode({"client_id": "kubeflow-oidc-authservice", "redirect_uri": self.callback,
                               "response_type": "code", "scope": "profile email groups openid", "state": state})
            extra = () if self.kind == "as-1.5" or self.drop_state else (f"oidc_state_csrf={state}",)
            self.reply(h, 302, "Found", location=f"/dex/auth?{query}", cookies=extra)

    def oauth_start(self, h: Exchange, rd: str) -> None:
        """oauth2-proxy's doOAuthStart: a CSRF cookie and a 302 to its login_url (Dex)."""
        nonce = secrets.token_hex(8)
        dex = "http://dex.auth.svc.cluster.local:5556/dex/auth" if self.in_cluster else "/dex/auth"
        if self.off_host:
            dex = "https://login.example.org/dex/auth"
        extra = {"approval_prompt": "force"} if self.kind == "o2p-1.9.0" else {"prompt": "none"}
        query = urlencode({**extra, "client_id": "kubeflow-oidc-authservice", "redirect_uri": self.callback,
                           "response_type": "code", "state": f"{nonce}:{rd}"})
        self.reply(h, 302, "Found", location=f"{dex}?{query}", cookies=(f"oauth2_proxy_kubeflow_csrf={nonce}",))

    def dex(self, h: Exchange, method: str, path: str, q: dict[str, str], form: dict[str, str],
            raw: str) -> None:
        old = self.kind == "as-1.5"
        if path == "/dex/auth":
            rid = secrets.token_hex(6)
            self.reqs[rid] = {"redirect": q["redirect_uri"], "state": q["state"]}
            links = {c: self.prefix + (f"/dex/auth/{c}?req={rid}" if old else f"/dex/auth/{c}?{raw}")
                     for c in self.connectors}
            if len(links) == 1:
                self.reply(h, 302, "Found", location=next(iter(links.values())).removeprefix(self.prefix))
                return
            rows = "".join(f'<a href="{href.replace("&", "&amp;")}"><button>'
                           f'<span>Log in with {NAMES.get(c, c.title())}</span>'
                           "</button></a>" for c, href in links.items())
            self.reply(h, 200, f"<html><h2 class=\"theme-heading\">Log in to dex</h2>{rows}</html>")
            return
        if path.startswith("/dex/approval"):
            rid = form.get("req") or q.get("req", "")
            if method == "GET" and self.kind == "o2p-1.9.0":
                self.reply(h, 200, '<html><h2 class="theme-heading">Grant Access</h2>'
                           f'<form method="post"><input type="hidden" name="req" value="{rid}"/>'
                           '<input type="hidden" name="approval" value="approve"/><button>Grant Access</button></form>'
                           f'<form method="post"><input type="hidden" name="req" value="{rid}"/>'
                           '<input type="hidden" name="approval" value="rejected"/><button>Cancel</button></form></html>')  # noqa: E501
                return
            self.code(h, rid)
            return
        parts = path.split("/")  # /dex/auth/<id>[/login]
        if not old and len(parts) == 4:
            rid = secrets.token_hex(6)
            self.reqs[rid] = {"redirect": q["redirect_uri"], "state": q["state"]}
            self.reply(h, 302, "Found", location="/dex/auth/" + parts[3] + "/login?" + urlencode({"back": "", "state": rid}))  # noqa: E501
            return
        rid = q.get("req", "") if old else q.get("state", "")
        if method == "POST":
            if form.get("password") == PASSWORD and form.get("login") in (USER, "user"):
                if self.kind in ("as-1.8", "o2p-1.9.1"):  # Dex 2.36 / 2.37+: the code straight to the callback
                    self.code(h, rid)
                else:
                    self.reply(h, 303, "See Other", location=f"/dex/approval?req={rid}")
                return
            status = 401 if self.kind in ("as-1.8", "o2p-1.9.0", "o2p-1.9.1") else 200  # Dex >= 2.36: 401
            prompt = "Username" if path.startswith("/dex/auth/ldap") else "Email Address"
            self.reply(h, status, self.password_form(h.path, error=prompt))
            return
        self.reply(h, 200, self.password_form(h.path))

    @staticmethod
    def password_form(action: str, error: str = "") -> str:
        box = f'<div id="login-error" class="dex-error-box">Invalid {error} and password.</div>' if error else ""
        return (f'<html><h2 class="theme-heading">Log in to Your Account</h2><form method="post" '
                f'action="{action.replace("&", "&amp;")}"><input id="login" name="login" type="text">'
                f'<input id="password" name="password" type="password">{box}<button>Login</button></form></html>')

    def code(self, h: Exchange, rid: str) -> None:
        req = self.reqs.pop(rid)
        code = secrets.token_hex(8)
        self.codes[code] = req["state"]
        self.reply(h, 303, "See Other", location=req["redirect"] + "?" + urlencode({"code": code, "state": req["state"]}))  # noqa: E501

    def finish(self, h: Exchange, q: dict[str, str], cookies: dict[str, str]) -> None:
        state = q.get("state", "")
        if self.codes.pop(q.get("code", ""), None) != state:
            self.reply(h, 500, "Failed to exchange authorization code with token.", "text/plain")
            return
        value = secrets.token_urlsafe(3000 if self.big_cookie else 32)
        self.sessions.add(value)
        if self.kind.startswith("o2p"):
            if cookies.get("oauth2_proxy_kubeflow_csrf") != state.partition(":")[0]:
                self.reply(h, 403, "<html><h1>Forbidden</h1><p>Login Failed: Unable to find a valid CSRF token. "
                           "Please try again.</p></html>")
                return
            if self.big_cookie:
                out = tuple(f"oauth2_proxy_kubeflow_{i}={value[i * 2000:(i + 1) * 2000]}" for i in range(2))
            else:
                out = (f"oauth2_proxy_kubeflow={value}",)
            self.reply(h, 302, "Found", location=state.partition(":")[2] or "/", cookies=out)
            return
        if self.kind != "as-1.5" and cookies.get("oidc_state_csrf") != state:
            self.reply(h, 400, "CSRF check failed. This may happen if you opened the login form in more than 1 tabs. "
                       "Please try to login again.", "text/plain")
            return
        self.reply(h, 302, "Found", location="/", cookies=(f"authservice_session={value}",))
