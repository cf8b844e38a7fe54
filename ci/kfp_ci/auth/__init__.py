"""Authentication: none, bearer token, cookie, Dex login (oauth2-proxy or oidc-authservice), auto.

``client_from_settings(settings)`` is how every command gets its logged-in :class:`kfp_ci.client.Client`;
``login_command`` is ``kfp-ci login``. The Dex walker lives in ``_dex``, the re-login Auth in ``_session``,
the 0600 session cache in ``_cache``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import httpx

from kfp_ci import _console, _secrets
from kfp_ci._http import BearerToken, CookieAuth, TokenFile, build_http_client, normalize_host
from kfp_ci.auth import _cache
from kfp_ci.auth._dex import Session, check_plain_http, dex_login
from kfp_ci.auth._session import DexSession
from kfp_ci.config import Settings, read_secret
from kfp_ci.errors import AuthError, ConfigError, Unauthenticated, UsageError

__all__ = ["DexSession", "Session", "build_auth", "client_from_settings", "effective_mode", "login", "login_command",
           "resolve_mode"]


def _verify(settings: Settings) -> bool | str:
    if settings.insecure_skip_tls_verify:
        return False
    return str(settings.ca_bundle) if settings.ca_bundle else True


def _password(settings: Settings) -> str | None:
    if settings.password:
        return settings.password
    if settings.password_file:
        return read_secret(settings.password_file, "password")
    return None


def _cookie(settings: Settings) -> str | None:
    if settings.cookie:
        return settings.cookie
    if settings.cookie_file:
        return read_secret(settings.cookie_file, "cookie")
    return None


def resolve_mode(settings: Settings) -> str:
    """The auth mode ``auto`` stands for, from what is configured: token, cookie, dex, else none."""
    if settings.auth != "auto":
        return settings.auth
    if settings.token or settings.token_file:
        return "token"
    if settings.cookie or settings.cookie_file:
        return "cookie"
    if settings.username and (settings.password or settings.password_file):
        return "dex"
    return "none"


def _open_without_login(settings: Settings, host: str) -> bool:
    """True when an unauthenticated healthz already answers JSON (auto mode: no login needed)."""
    with build_http_client(auth=None, verify=_verify(settings), timeout=settings.timeout, transport=None) as http:
        try:
            response = http.get(host.rstrip("/") + "/apis/v2beta1/healthz", follow_redirects=False)
        except httpx.HTTPError:
            return False
    return response.status_code == 200 and "json" in response.headers.get("content-type", "")


def effective_mode(settings: Settings, host: str) -> str:
    """``resolve_mode``, and in ``auto`` with Dex credentials: ``none`` when the server needs no login."""
    mode = resolve_mode(settings)
    if settings.auth == "auto" and mode == "dex" and _open_without_login(settings, host):
        return "none"
    return mode


def login(settings: Settings, host: str, *, debug_dir: Path | None = None) -> Session:
    """Run the Dex login for ``settings`` against ``host`` and return the proven session."""
    password = _password(settings)
    if not settings.username:
        raise ConfigError("dex login needs a username: set KFP_CI_USERNAME or pass --username")
    if not password:
        raise ConfigError("dex login needs a password: set KFP_CI_PASSWORD, or use --password-stdin or --password-file")
    with build_http_client(auth=None, verify=_verify(settings), timeout=settings.timeout, transport=None) as http:
        return dex_login(http, host, settings.username, password, connector=settings.dex_connector,
                         debug_dir=debug_dir, allow_insecure_http=settings.allow_insecure_http)


def build_auth(settings: Settings, host: str, *, debug_dir: Path | None = None) -> httpx.Auth | None:
    """The httpx Auth for ``settings`` (``None`` for no auth). Dex logs in lazily, on the first request."""
    host = normalize_host(host)
    mode = effective_mode(settings, host)
    if mode == "none":
        return None
    if mode == "token":
        check_plain_http(host, settings.allow_insecure_http, "the bearer token")
        if settings.token:
            return BearerToken(settings.token)
        if settings.token_file:
            return TokenFile(settings.token_file)
        if os.environ.get("KF_PIPELINES_SA_TOKEN_PATH") or Path("/var/run/secrets/kubeflow/pipelines/token").exists():
            return TokenFile()
        raise ConfigError("token auth needs a token: set KFP_CI_TOKEN or pass --token-file")
    if mode == "cookie":
        cookie = _cookie(settings)
        if not cookie:
            raise ConfigError("cookie auth needs a cookie: set KFP_CI_COOKIE or pass --cookie-file")
        check_plain_http(host, settings.allow_insecure_http, "the session cookie")
        if "=" not in cookie:
            raise ConfigError("the cookie must look like name=value (e.g. oauth2_proxy_kubeflow=...)")
        return CookieAuth(cookie)
    if mode == "dex":
        cached = _cache.load(host)
        session = Session(cached, "cached") if cached else None
        if settings.username and (settings.password or settings.password_file):
            def relogin() -> Session:
                return login(settings, host, debug_dir=debug_dir)

            def keep_cache_fresh(new: Session) -> None:
                _cache.save(host, new.cookies, None)

            return DexSession(session, relogin, keep_cache_fresh if cached else None)
        if session is None:
            raise ConfigError("dex login needs KFP_CI_USERNAME and a password (KFP_CI_PASSWORD, --password-stdin "
                              "or --password-file), or a session saved by kfp-ci login --save")
        return DexSession(session, None)
    raise UsageError(f"unknown auth mode {mode!r}")


def client_from_settings(settings: Settings) -> Any:
    """The :class:`kfp_ci.client.Client` for ``settings``, authenticated (a saved session is reused)."""
    from kfp_ci.client import Client

    if not settings.host:
        raise ConfigError("no KFP host: pass --host, set KFP_CI_HOST or host in [tool.kfp-ci]")
    host = normalize_host(settings.host)
    auth = build_auth(settings, host)
    if auth is None and settings.auth == "auto":
        cached = _cache.load(host)
        if cached:
            auth = DexSession(Session(cached, "cached"), None)
    return Client(host, namespace=settings.namespace, auth=auth, verify=_verify(settings), timeout=settings.timeout)


def _namespaces(client: Any, host: str) -> tuple[str | None, list[str]]:
    """Who is logged in and their namespaces, from the dashboard's env-info (if the host has one)."""
    from urllib.parse import urlsplit

    parts = urlsplit(host)
    url = f"{parts.scheme}://{parts.netloc}/api/workgroup/env-info"
    try:
        response = client._http.get(url)
    except httpx.HTTPError:
        return None, []
    if response.status_code != 200 or "json" not in response.headers.get("content-type", ""):
        return None, []
    body = response.json()
    user = body.get("user") if isinstance(body, dict) else None
    spaces = [str(n.get("namespace")) for n in body.get("namespaces", []) if isinstance(n, dict)] if user else []
    return (str(user) if user else None), spaces


def login_command(app: Any, settings: Settings, save: bool = False, print_cookie: bool = False,
                  debug_dir: Path | None = None, **_: Any) -> int:
    """``kfp-ci login``: log in, prove it, print who and (multi-user) the namespaces; optionally save/print."""
    from kfp_ci.client import Client

    if not settings.host:
        raise ConfigError("no KFP host: pass --host, set KFP_CI_HOST or host in [tool.kfp-ci]")
    host = normalize_host(settings.host)
    mode = effective_mode(settings, host)
    session: Session | None = None
    auth: httpx.Auth | None
    if mode == "dex":
        if settings.username and (settings.password or settings.password_file):
            session = login(settings, host, debug_dir=debug_dir)
            auth = DexSession(session, None)
        else:
            auth = build_auth(settings, host, debug_dir=debug_dir)
            session = auth.session if isinstance(auth, DexSession) else None
    else:
        auth = build_auth(settings, host, debug_dir=debug_dir)
    client = Client(host, namespace=settings.namespace, auth=auth, verify=_verify(settings), timeout=settings.timeout)
    with client:
        try:
            server = client.server
        except (AuthError, Unauthenticated) as exc:
            if session is not None and session.kind == "cached":
                _cache.forget(host)
            if mode == "none":
                raise AuthError("the server requires a login: set KFP_CI_USERNAME and KFP_CI_PASSWORD (Dex), "
                                f"KFP_CI_TOKEN (token) or KFP_CI_COOKIE (cookie) [{exc}]") from exc
            raise
        user, spaces = _namespaces(client, host)
    who = user or settings.username or "anonymous"
    how = {"none": "no auth", "token": "bearer token", "cookie": "cookie"}.get(mode, "dex session")
    if session is not None and session.kind not in ("", "cached"):
        how = f"dex via {session.kind}"
    _console.out(f"logged in to {host} as {who} ({how}; KFP {server.version or '?'}, API {server.api})")
    if server.multi_user:
        _console.out("namespaces: " + (", ".join(spaces) if spaces else "(none found)"))
    cookie_header = session.header() if session is not None else (_cookie(settings) if mode == "cookie" else None)
    _secrets.register(cookie_header, github_mask=False)  # masked in GitHub logs just below, when printed
    if save:
        if session is None:
            _console.warn(f"--save: nothing to save with {how} (only dex sessions are cached)")
        else:
            path = _cache.save(host, session.cookies, user)
            _console.info(f"session saved to {path} (mode 0600)")
    if print_cookie:
        if not cookie_header:
            raise UsageError(f"--print-cookie: there is no session cookie with {how}")
        if _console.in_github_actions():
            sys.stdout.write(f"::add-mask::{cookie_header}\n")
            for value in (session.cookies.values() if session else ()):
                sys.stdout.write(f"::add-mask::{value}\n")
        sys.stdout.write(cookie_header + "\n")  # the one place a secret is printed, on request
        sys.stdout.flush()
    return 0
