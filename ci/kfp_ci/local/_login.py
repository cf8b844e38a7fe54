"""Login emulation of the embedded server: bearer tokens, and Dex behind oauth2-proxy or oidc-authservice.

``wrap_login(app, options)`` puts an ASGI middleware in front of the API that behaves like the Istio gateway of
a Kubeflow install (facts: ``shared/reference/kubeflow-login.md``):

- ``auth="token"``: ``Authorization: Bearer <token>`` from ``options.tokens``; anything else is 401 ``{}``.
- ``auth="dex", dex_shape="oauth2-proxy"`` (Kubeflow 1.9.1+): unauthenticated pages get the 403 sign-in page
  (a GET form to ``/oauth2/start``), API routes 401 ``{}``; ``kubeflow_version="1.9.0"`` redirects straight to Dex
  and adds Dex's Grant Access page. Session cookie ``oauth2_proxy_kubeflow``, split into ``_0``, ``_1``... when
  the ``Set-Cookie`` line would pass 4000 bytes (LDAP sessions carry many groups, so they are split);
  ``oauth2_proxy_kubeflow_csrf`` during the login.
- ``auth="dex", dex_shape="authservice"`` (Kubeflow 1.0-1.8): every unauthenticated request is 302'd to Dex
  (so an API call ends on Dex's login HTML with status 200); cookie ``authservice_session``; from Kubeflow 1.7 the
  callback is ``/authservice/oidc/callback`` with an ``oidc_state_csrf`` cookie, before it ``/login/oidc``.
  ``dex_url_shape`` picks Dex's ``/dex/auth/local?req=`` (old) or ``/dex/auth/local/login?back=&state=`` (new).

A wrong password re-renders the form with the error box: status 401 on Dex >= 2.36 (Kubeflow >= 1.8), 200 before
(old Dex URL shape or Kubeflow < 1.8); ``options.dex_wrong_password_status`` (if set) overrides it. Requests let
through carry ``kubeflow-userid``; one coming from the client is dropped. ``expire_all_sessions(app)`` ends every
session (the faults hook); a session also ends ``session_ttl`` seconds after the login. The dashboard's
``/api/workgroup/env-info`` answers who is logged in.

Machine access besides the login: a Bearer token from ``options.tokens`` works in every mode; oidc-authservice
also takes its session value as ``X-Auth-Token`` (Kubeflow <= 1.6) or ``Authorization: Bearer`` (1.7-1.8); on
oauth2-proxy 1.9.1+ any other ``Authorization`` header bypasses oauth2-proxy and meets Istio's
``403 RBAC: access denied``. Nothing here logs; passwords, codes and session values stay in memory. The HTML
pages come from ``_login_pages``.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlencode

from kfp_ci.local._login_pages import (
    approval_page,
    connector_page,
    dex_error_page,
    error_page,
    password_page,
    sign_in_page,
)

__all__ = ["LoginApp", "expire_all_sessions", "wrap_login"]

ASGIApp = Any
Scope = dict[str, Any]

OAUTH2_COOKIE = "oauth2_proxy_kubeflow"
AUTHSERVICE_COOKIE = "authservice_session"
STATE_COOKIE = "oidc_state_csrf"
CLIENT_ID = "kubeflow-oidc-authservice"
MAX_COOKIE = 4000
API_ROUTES = re.compile(r"/api/|/apis/|^/ml_metadata")
LDAP_GROUPS = 160  # an LDAP login carries this many groups: its oauth2-proxy session needs split cookies


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


@dataclass
class _AuthRequest:
    redirect_uri: str
    state: str
    connector: str = ""
    user: str = ""
    hmac: str = field(default_factory=lambda: secrets.token_urlsafe(16))


@dataclass
class _Pending:
    """What a proxy remembers between its redirect to Dex and the callback."""

    rd: str
    created: float


class LoginApp:
    """The ASGI middleware (one per server); state lives in memory, guarded by a lock."""

    def __init__(self, app: ASGIApp, options: Any) -> None:
        self.app = app
        self.options = options
        self.mode: str = options.auth
        self.shape: str = options.dex_shape
        self.version = _version(str(options.kubeflow_version))
        self.old_urls = options.dex_url_shape == "old"
        self.connectors: tuple[str, ...] = tuple(options.connectors) or ("local",)
        self.ttl = float(options.session_ttl)
        override = getattr(options, "dex_wrong_password_status", None)
        if override:
            self.wrong_status = int(override)
        elif self.shape == "authservice" and (self.old_urls or self.version < (1, 8)):
            self.wrong_status = 200
        else:
            self.wrong_status = 401
        self.legacy_callback = self.shape == "authservice" and self.version < (1, 7)
        if self.shape == "authservice":
            self.callback = "/login/oidc" if self.legacy_callback else "/authservice/oidc/callback"
            # Dex's approval hop: skipped silently before 2.36 (KF <= 1.7), absent on 1.8's Dex 2.36
            self.approval = "skip" if self.version < (1, 8) else "none"
        else:
            self.callback = "/oauth2/callback"
            self.approval = "page" if self.version < (1, 9, 1) else "none"
        self._lock = threading.Lock()
        self.sessions: dict[str, tuple[str, float]] = {}
        self.requests: dict[str, _AuthRequest] = {}
        self.codes: dict[str, tuple[str, str]] = {}  # code -> (user, state)
        self.pending: dict[str, _Pending] = {}

    # ------------------------------------------------------------------------------------------- plumbing
    def _max_age(self) -> int:
        """Cookie lifetime in whole seconds; the server-side expiry (``ttl``) is what ends a session."""
        return max(1, math.ceil(self.ttl))

    def expire_all(self) -> None:
        with self._lock:
            self.sessions.clear()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"kubeflow-userid"]
        scope = dict(scope, headers=headers)
        req = _Req(scope)
        if self.mode == "token":
            user = self._bearer_user(req)
            if user is None:
                await _send(send, 401, b"{}", "application/json")
                return
            if scope["path"] == "/api/workgroup/env-info":
                await self._env_info(user, send)
                return
            await self._forward(scope, receive, send, user)
            return
        path = scope["path"]
        if path.startswith("/dex/") or path == "/dex":
            if req.method == "POST":
                req.form = parse_qs((await _body(receive)).decode("utf-8", "replace"))
            await self._dex(req, send)
            return
        if self.shape == "oauth2-proxy" and path.startswith("/oauth2/"):
            await self._oauth2(req, send)
            return
        if self.shape == "authservice" and path == self.callback:
            await self._authservice_callback(req, send)
            return
        user = self._bearer_user(req) or self._session_user(req)
        if user is None and self.shape == "oauth2-proxy" and self.version >= (1, 9, 1) and req.header("authorization"):
            # 1.9.1+: a request with an Authorization header skips oauth2-proxy; without a verified JWT
            # Istio's DENY policy answers (kubeflow-login.md section 1(b), "Istio/Envoy error bodies")
            await _send(send, 403, b"RBAC: access denied", "text/plain")
            return
        if user is None:
            await self._unauthenticated(req, send)
            return
        if path == "/api/workgroup/env-info":
            await self._env_info(user, send)
            return
        await self._forward(scope, receive, send, user)

    async def _forward(self, scope: Scope, receive: Any, send: Any, user: str) -> None:
        scope = dict(scope, headers=[*scope["headers"], (b"kubeflow-userid", user.encode())])
        await self.app(scope, receive, send)

    def _bearer_user(self, req: _Req) -> str | None:
        value = req.header("authorization")
        if value and value.lower().startswith("bearer "):
            return dict(self.options.tokens).get(value[7:].strip())
        return None

    def _session_user(self, req: _Req) -> str | None:
        cookies = req.cookies()
        name = OAUTH2_COOKIE if self.shape == "oauth2-proxy" else AUTHSERVICE_COOKIE
        value = cookies.get(name)
        if value is None and self.shape == "authservice":
            # oidc-authservice also takes the session value from a header: X-Auth-Token (28c59ef, KF <= 1.6),
            # Authorization: Bearer (e236439, KF 1.7-1.8)
            if self.legacy_callback:
                value = req.header("x-auth-token")
            else:
                bearer = req.header("authorization") or ""
                value = bearer[7:].strip() if bearer.lower().startswith("bearer ") else None
        if value is None and self.shape == "oauth2-proxy":
            chunks = []
            n = 0
            while f"{name}_{n}" in cookies:
                chunks.append(cookies[f"{name}_{n}"])
                n += 1
            value = "".join(chunks) if chunks else None
        if value is None:
            return None
        with self._lock:
            found = self.sessions.get(value)
            if found is None:
                return None
            if found[1] < time.time():
                del self.sessions[value]
                return None
            return found[0]

    async def _env_info(self, user: str, send: Any) -> None:
        profiles = dict(self.options.profiles)
        namespaces = profiles.get(user) or ("kubeflow-user-" + re.sub(r"[^a-z0-9]+", "-", user.lower()).strip("-"),)
        body = {"user": user, "isClusterAdmin": False, "platform": {"kubeflowVersion": ".".join(map(str, self.version))},  # noqa: E501
                "namespaces": [{"user": user, "namespace": ns, "role": "owner"} for ns in namespaces]}
        await _send(send, 200, json.dumps(body).encode(), "application/json")

    # ---------------------------------------------------------------------------------------- unauthenticated
    async def _unauthenticated(self, req: _Req, send: Any) -> None:
        if self.shape == "oauth2-proxy":
            accept = req.header("accept") or ""
            api = self.version >= (1, 9, 1) and API_ROUTES.search(req.path) is not None
            if api or accept.strip() == "application/json":
                await _send(send, 401, b"{}", "application/json")
                return
            if self.version < (1, 9, 1):  # 1.9.0: skip_provider_button = true
                await self._oauth2_start(req.full_path, send)
                return
            # the sign-in page also clears whatever (stale) session cookies the browser sent
            stale = [n for n in req.cookies() if n == OAUTH2_COOKIE or re.fullmatch(OAUTH2_COOKIE + r"_\d+", n)]
            clear = [(b"set-cookie", _set_cookie(n, "", max_age=0).encode()) for n in stale or [OAUTH2_COOKIE]]
            await _send(send, 403, sign_in_page(req.full_path).encode(), "text/html; charset=utf-8", clear)
            return
        state = secrets.token_urlsafe(24)
        with self._lock:
            _remember(self.pending, state, _Pending(rd=req.full_path, created=time.time()))
        query = urlencode({"client_id": CLIENT_ID, "redirect_uri": self.callback, "response_type": "code",
                           "scope": "profile email groups openid", "state": state})
        cookies = []
        if not self.legacy_callback:
            cookies.append(_set_cookie(STATE_COOKIE, state, max_age=3600))
        await _redirect(send, 302, f"/dex/auth?{query}", cookies)

    # ------------------------------------------------------------------------------------------- oauth2-proxy
    async def _oauth2(self, req: _Req, send: Any) -> None:
        if req.path == "/oauth2/start":
            await self._oauth2_start(req.query.get("rd", ["/"])[0] or "/", send)
            return
        if req.path == "/oauth2/callback":
            await self._oauth2_callback(req, send)
            return
        if req.path == "/oauth2/sign_out":
            await _redirect(send, 302, "/", [_set_cookie(OAUTH2_COOKIE, "", max_age=0)])
            return
        await _send(send, 404, error_page(404, "Not Found", "Page not found").encode(), "text/html")

    async def _oauth2_start(self, rd: str, send: Any) -> None:
        if not rd.startswith("/") or rd.startswith("//"):
            rd = "/"
        nonce = secrets.token_urlsafe(24)
        with self._lock:
            _remember(self.pending, nonce, _Pending(rd=rd, created=time.time()))
        prompt = {"approval_prompt": "force"} if self.version < (1, 9, 1) else {"prompt": "none"}
        query = urlencode({"client_id": CLIENT_ID, "code_challenge": secrets.token_urlsafe(32),
                           "code_challenge_method": "S256", "redirect_uri": "/oauth2/callback",
                           "response_type": "code", "scope": "openid email groups profile offline_access",
                           "state": f"{nonce}:{rd}", **prompt})
        await _redirect(send, 302, f"/dex/auth?{query}", [_set_cookie(f"{OAUTH2_COOKIE}_csrf", nonce, max_age=900)])

    async def _oauth2_callback(self, req: _Req, send: Any) -> None:
        if "error" in req.query:
            await self._login_failed(send, "The upstream identity provider returned an error: "
                                     + req.query["error"][0])
            return
        state = req.query.get("state", [""])[0]
        nonce, _, rd = state.partition(":")
        csrf = req.cookies().get(f"{OAUTH2_COOKIE}_csrf")
        if not csrf or csrf != nonce:
            await self._login_failed(send, "Unable to find a valid CSRF token. Please try again.")
            return
        user = self._redeem(req.query.get("code", [""])[0], state)
        with self._lock:
            pending = self.pending.pop(nonce, None)
        if user is None or pending is None:
            await self._login_failed(send, "Unable to redeem the authorization code.", status=500)
            return
        value = self._new_session(user)
        cookies = [_set_cookie(f"{OAUTH2_COOKIE}_csrf", "", max_age=0)]
        attrs = f"; Path=/; Max-Age={self._max_age()}; HttpOnly; SameSite=Lax"
        if len(OAUTH2_COOKIE) + 1 + len(value) + len(attrs) <= MAX_COOKIE:
            cookies.append(f"{OAUTH2_COOKIE}={value}{attrs}")
        else:
            size = MAX_COOKIE - len(OAUTH2_COOKIE) - 4 - len(attrs)
            for i, start in enumerate(range(0, len(value), size)):
                cookies.append(f"{OAUTH2_COOKIE}_{i}={value[start:start + size]}{attrs}")
        await _redirect(send, 302, rd or "/", cookies)

    async def _login_failed(self, send: Any, message: str, status: int = 403) -> None:
        page = error_page(status, "Forbidden" if status == 403 else "Internal Server Error", "Login Failed: " + message)
        await _send(send, status, page.encode(), "text/html; charset=utf-8")

    # -------------------------------------------------------------------------------------------- authservice
    async def _authservice_callback(self, req: _Req, send: Any) -> None:
        state = req.query.get("state", [""])[0]
        if not state:
            await _send(send, 400, b"Missing url parameter: state", "text/plain; charset=utf-8")
            return
        if not self.legacy_callback and req.cookies().get(STATE_COOKIE) != state:
            await _send(send, 400, b"CSRF check failed. This may happen if you opened the login form in more than 1 "
                        b"tabs. Please try to login again.", "text/plain; charset=utf-8")
            return
        user = self._redeem(req.query.get("code", [""])[0], state)
        with self._lock:
            pending = self.pending.pop(state, None)
        if user is None or pending is None:
            await _send(send, 500, b"Failed to exchange authorization code with token.", "text/plain; charset=utf-8")
            return
        value = self._new_session(user)
        cookies = [_set_cookie(AUTHSERVICE_COOKIE, value, max_age=self._max_age())]
        if not self.legacy_callback:
            cookies.append(_set_cookie(STATE_COOKIE, "", max_age=0))
        await _redirect(send, 302, pending.rd, cookies)

    # ------------------------------------------------------------------------------------------------ sessions
    def _redeem(self, code: str, state: str) -> str | None:
        with self._lock:
            found = self.codes.pop(code, None)
        if found is None or found[1] != state:
            return None
        return found[0]

    def _new_session(self, user: str) -> str:
        connector, _, email = user.partition("|")
        payload: dict[str, Any] = {"email": email, "sid": secrets.token_urlsafe(16)}
        if connector == "ldap":
            payload["groups"] = [f"cn=kubeflow-team-{i:03d},ou=groups,dc=example,dc=org" for i in range(LDAP_GROUPS)]
        value = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
        value = f"{value}|{int(time.time())}|{secrets.token_urlsafe(32)}"
        with self._lock:
            _remember(self.sessions, value, (email, time.time() + self.ttl))
        return value

    # ----------------------------------------------------------------------------------------------------- Dex
    async def _dex(self, req: _Req, send: Any) -> None:
        path = req.path
        if path == "/dex/auth":
            await self._dex_auth(req, send)
            return
        if path.startswith("/dex/approval"):
            await self._dex_approval(req, send)
            return
        m = re.fullmatch(r"/dex/auth/([^/]+)(/login)?", path)
        if m is None:
            await _dex_error(send, 404, "Requested resource does not exist.")
            return
        connector, login = m.group(1), bool(m.group(2))
        if connector not in self.connectors:
            await _dex_error(send, 404, "Connector ID does not match a valid Connector")
            return
        if self.old_urls:
            if login:
                await _dex_error(send, 404, "Requested resource does not exist.")
                return
            rid = req.query.get("req", [""])[0]
            await self._password(req, send, rid, connector)
            return
        if not login:  # new shape: /dex/auth/<id>?<oauth query> creates the request, then the form
            areq = self._new_auth_request(req)
            if areq is None:
                await _dex_error(send, 400, "Unregistered redirect_uri.")
                return
            rid, a = areq
            a.connector = connector
            back = "" if len(self.connectors) == 1 else "/dex/auth?" + req.raw_query
            await _redirect(send, 302, f"/dex/auth/{connector}/login?" + urlencode({"back": back, "state": rid}))
            return
        await self._password(req, send, req.query.get("state", [""])[0], connector)

    def _registered(self, req: _Req) -> bool:
        """The OAuth query names Dex's one static client and its registered redirect URI."""
        redirect_uri: str = req.query.get("redirect_uri", [""])[0]
        client_id: str = req.query.get("client_id", [""])[0]
        return client_id == CLIENT_ID and redirect_uri == self.callback

    def _new_auth_request(self, req: _Req) -> tuple[str, _AuthRequest] | None:
        if not self._registered(req):
            return None
        redirect_uri = req.query.get("redirect_uri", [""])[0]
        rid = secrets.token_hex(13)
        a = _AuthRequest(redirect_uri=redirect_uri, state=req.query.get("state", [""])[0])
        with self._lock:
            _remember(self.requests, rid, a)
        return rid, a

    async def _dex_auth(self, req: _Req, send: Any) -> None:
        if self.old_urls:
            areq = self._new_auth_request(req)
            if areq is None:
                await _dex_error(send, 400, "Unregistered redirect_uri.")
                return
            rid = areq[0]
            links = {c: f"/dex/auth/{c}?req={rid}" for c in self.connectors}
        else:
            if not self._registered(req):  # Dex >= 2.29 creates the request at /dex/auth/<connector>
                await _dex_error(send, 400, "Unregistered redirect_uri.")
                return
            links = {c: f"/dex/auth/{c}?{req.raw_query}" for c in self.connectors}
        if len(self.connectors) == 1:
            await _redirect(send, 302, links[self.connectors[0]])
            return
        await _send(send, 200, connector_page(links).encode(), "text/html; charset=utf-8")

    async def _password(self, req: _Req, send: Any, rid: str, connector: str) -> None:
        with self._lock:
            a = self.requests.get(rid)
        if a is None:
            await _dex_error(send, 400, "Login session expired." if self.old_urls else "User session error.")
            return
        prompt = "Username" if connector == "ldap" else "Email Address"
        back = None
        if len(self.connectors) > 1:
            back = "javascript:history.back()" if self.old_urls else req.query.get("back", [""])[0]
        if req.method == "GET":
            page = password_page(req.full_path, prompt, back=back)
            await _send(send, 200, page.encode(), "text/html; charset=utf-8")
            return
        if req.method != "POST":
            await _dex_error(send, 400, "Unsupported request method.")
            return
        login = (req.form.get("login") or [""])[0]
        password = (req.form.get("password") or [""])[0]
        user = self._check(connector, login, password)
        if user is None:
            page = password_page(req.full_path, prompt, back=back, last=login, error=f"Invalid {prompt} and password.")
            await _send(send, self.wrong_status, page.encode(), "text/html; charset=utf-8")
            return
        a.user, a.connector = f"{connector}|{user}", connector
        if self.approval == "none":
            await self._send_code(send, rid, a)
            return
        # Dex >= 2.35 signs the approval URL (Kubeflow 1.9.0's Dex 2.39); Kubeflow <= 1.7 ships Dex 2.31 or older
        query = {"req": rid, "hmac": a.hmac} if self.version >= (1, 8) else {"req": rid}
        await _redirect(send, 303, "/dex/approval?" + urlencode(query))

    def _check(self, connector: str, login: str, password: str) -> str | None:
        users = dict(self.options.users)
        if connector == "ldap":  # LDAP binds with the uid: the local part of the configured e-mail
            for email, secret in users.items():
                if login in (email, email.split("@")[0]) and _same(secret, password):
                    return str(email)
            return None
        secret = users.get(login)
        if secret is not None and _same(secret, password):
            return login
        return None

    async def _dex_approval(self, req: _Req, send: Any) -> None:
        form = req.form if req.method == "POST" else {}
        rid = (form.get("req") or req.query.get("req") or [""])[0]
        with self._lock:
            a = self.requests.get(rid)
        if a is None or not a.user:
            await _dex_error(send, 400, "User session error.")
            return
        hmac = req.query.get("hmac", [""])[0]
        if "hmac" in req.query and hmac != a.hmac:
            await _dex_error(send, 401, "Unauthorized request")
            return
        if self.approval == "skip":
            await self._send_code(send, rid, a)
            return
        if req.method == "GET":
            await _send(send, 200, approval_page(rid).encode(), "text/html; charset=utf-8")
            return
        if (form.get("approval") or [""])[0] != "approve":
            await _dex_error(send, 500, "Approval rejected.")
            return
        await self._send_code(send, rid, a)

    async def _send_code(self, send: Any, rid: str, a: _AuthRequest) -> None:
        code = secrets.token_urlsafe(18)
        with self._lock:
            self.requests.pop(rid, None)
            _remember(self.codes, code, (a.user, a.state))
        sep = "&" if "?" in a.redirect_uri else "?"
        await _redirect(send, 303, f"{a.redirect_uri}{sep}" + urlencode({"code": code, "state": a.state}))


# ------------------------------------------------------------------------------------------------- helpers
MAX_ENTRIES = 10_000  # per in-memory table: a long-lived server forgets its oldest login requests and sessions


def _remember(table: dict[str, Any], key: str, value: Any) -> None:
    """``table[key] = value``, dropping the oldest entries beyond ``MAX_ENTRIES`` (caller holds the lock)."""
    table[key] = value
    while len(table) > MAX_ENTRIES:
        del table[next(iter(table))]


class _Req:
    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.raw_query: str = scope.get("query_string", b"").decode("latin-1")
        self.query = parse_qs(self.raw_query, keep_blank_values=True)
        self.form: dict[str, list[str]] = {}

    @property
    def full_path(self) -> str:
        return self.path + ("?" + self.raw_query if self.raw_query else "")

    def header(self, name: str) -> str | None:
        key = name.lower().encode()
        for k, v in self.scope["headers"]:
            if k.lower() == key:
                return str(v.decode("latin-1"))
        return None

    def cookies(self) -> dict[str, str]:
        jar: dict[str, str] = {}
        for k, v in self.scope["headers"]:
            if k.lower() == b"cookie":
                parsed: SimpleCookie = SimpleCookie()
                try:
                    parsed.load(v.decode("latin-1"))
                except Exception:  # noqa: S112 - a malformed cookie header is just no session
                    continue
                jar.update({name: morsel.value for name, morsel in parsed.items()})
        return jar


def _same(secret: str, given: str) -> bool:
    """Constant-time comparison of two passwords, any characters (``compare_digest`` refuses non-ASCII ``str``)."""
    return secrets.compare_digest(secret.encode("utf-8", "surrogatepass"), given.encode("utf-8", "surrogatepass"))


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _send(send: Any, status: int, body: bytes, ctype: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:  # noqa: E501
    headers = [(b"content-type", ctype.encode()), (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _redirect(send: Any, status: int, location: str, cookies: list[str] | None = None) -> None:
    text = "Found" if status == 302 else "See Other"
    body = f'<a href="{html.escape(location)}">{text}</a>.\n\n'.encode()
    extra = [(b"location", location.encode()), *((b"set-cookie", c.encode()) for c in cookies or [])]
    await _send(send, status, body, "text/html; charset=utf-8", extra)


def _set_cookie(name: str, value: str, *, max_age: int) -> str:
    return f"{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax"


async def _dex_error(send: Any, status: int, message: str) -> None:
    await _send(send, status, dex_error_page(status, message).encode(), "text/html; charset=utf-8")


# ---------------------------------------------------------------------------------------------- interface
def wrap_login(app: ASGIApp, options: Any) -> ASGIApp:
    """Put the login emulation for ``options.auth`` ("token" or "dex") in front of ``app``."""
    if options.auth == "none":
        return app
    return LoginApp(app, options)


def expire_all_sessions(app: ASGIApp) -> None:
    """End every login session of the middleware ``app`` (what ``wrap_login`` returned)."""
    if isinstance(app, LoginApp):
        app.expire_all()

