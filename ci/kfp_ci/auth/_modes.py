"""Auth modes: none, token, cookie, dex and auto; the httpx Auth for each and the authenticated Client."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from kfp_ci.auth import _cache
from kfp_ci.auth._dex import Session, check_plain_http, dex_login, healthz_body
from kfp_ci.auth._session import DexSession, NoCredentials
from kfp_ci.client import BearerToken, CookieAuth, TokenFile, build_http_client, normalize_host
from kfp_ci.config import Settings, read_secret
from kfp_ci.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from kfp_ci.client import Client

__all__ = ["build_auth", "client_from_settings", "cookie_value", "effective_mode", "login", "resolve_mode", "verify"]


def verify(settings: Settings) -> bool | str:
    if settings.insecure_skip_tls_verify:
        return False
    return str(settings.ca_bundle) if settings.ca_bundle else True


def _password(settings: Settings) -> str | None:
    if settings.password:
        return settings.password
    if settings.password_file:
        return read_secret(settings.password_file, "password")
    return None


def cookie_value(settings: Settings) -> str | None:
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
    with build_http_client(auth=None, verify=verify(settings), timeout=settings.timeout, transport=None) as http:
        for version in ("v2beta1", "v1beta1"):
            try:
                response = http.get(f"{host.rstrip('/')}/apis/{version}/healthz", follow_redirects=False)
            except httpx.HTTPError:
                return False
            if response.status_code != 404:
                return healthz_body(response) is not None
    return False


def effective_mode(settings: Settings, host: str) -> str:
    """``resolve_mode``, and in ``auto`` with Dex credentials: ``none`` when the server needs no login."""
    mode = resolve_mode(settings)
    if settings.auth == "auto" and mode == "dex" and _open_without_login(settings, host):
        return "none"
    return mode


def login(settings: Settings, host: str, *, debug_dir: Path | None = None, prove: bool = True) -> Session:
    """Run the Dex login for ``settings`` against ``host`` and return the session (``prove``: see dex_login)."""
    password = _password(settings)
    if not settings.username:
        raise ConfigError("dex login needs a username: set KFP_CI_USERNAME or pass --username")
    if not password:
        raise ConfigError("dex login needs a password: set KFP_CI_PASSWORD, or use --password-stdin or --password-file")
    if not settings.allow_insecure_http:  # fail before any request; with the flag, the walker warns once
        check_plain_http(host, False, "the Dex password")
    with build_http_client(auth=None, verify=verify(settings), timeout=settings.timeout, transport=None) as http:
        return dex_login(http, host, settings.username, password, connector=settings.dex_connector,
                         debug_dir=debug_dir, allow_insecure_http=settings.allow_insecure_http, prove=prove)


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
        cookie = cookie_value(settings)
        if not cookie:
            raise ConfigError("cookie auth needs a cookie: set KFP_CI_COOKIE or pass --cookie-file")
        check_plain_http(host, settings.allow_insecure_http, "the session cookie")
        if "=" not in cookie:
            raise ConfigError("the cookie must look like name=value (e.g. oauth2_proxy_kubeflow=...)")
        return CookieAuth(cookie)
    if mode == "dex":
        if not settings.allow_insecure_http:
            check_plain_http(host, False, "the Dex session")
        cached = _cache.load(host)
        session = Session(cached, "cached") if cached else None
        if settings.username and (settings.password or settings.password_file):
            def relogin() -> Session:  # the request DexSession sends next proves the session
                return login(settings, host, debug_dir=debug_dir, prove=False)

            def keep_cache_fresh(new: Session) -> None:
                _cache.save(host, new.cookies, None)

            return DexSession(session, relogin, keep_cache_fresh if cached else None, _forget(host))
        if session is None:
            raise ConfigError("dex login needs KFP_CI_USERNAME and a password (KFP_CI_PASSWORD, --password-stdin "
                              "or --password-file), or a session saved by kfp-ci login --save")
        return DexSession(session, None, on_refused=_forget(host))
    raise UsageError(f"unknown auth mode {mode!r}")


def _forget(host: str) -> Callable[[], None]:
    """What a refused saved session does: its file is removed, so no later command sends it again."""
    return lambda: _cache.forget(host)


def client_from_settings(settings: Settings) -> Client:
    """The :class:`kfp_ci.client.Client` for ``settings``, authenticated (a saved session is reused)."""
    from kfp_ci.client import Client

    if not settings.host:
        raise ConfigError("no KFP host: pass --host, set KFP_CI_HOST or host in [tool.kfp-ci]")
    host = normalize_host(settings.host)
    auth = build_auth(settings, host)
    if auth is None and settings.auth == "auto":
        cached = _cache.load(host)
        if cached:
            auth = DexSession(Session(cached, "cached"), None, on_refused=_forget(host))
    if auth is None:
        auth = NoCredentials()
    return Client(host, namespace=settings.namespace, auth=auth, verify=verify(settings), timeout=settings.timeout)


