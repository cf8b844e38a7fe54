"""``kfp-ci login``: log in, prove it, say who and where; ``--save`` and ``--print-cookie``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx

from kfp_ci import _console, _secrets
from kfp_ci.auth import _cache
from kfp_ci.auth._dex import Session
from kfp_ci.auth._modes import build_auth, cookie_value, effective_mode, login, verify
from kfp_ci.auth._session import DexSession, NoCredentials
from kfp_ci.client import normalize_host
from kfp_ci.config import Settings
from kfp_ci.errors import ApiError, AuthError, ConfigError, PermissionDenied, Unauthenticated, UsageError

__all__ = ["login_command"]


def _namespaces(client: Any, host: str) -> tuple[str | None, list[str]]:
    """Who is logged in and their namespaces, from the dashboard's env-info (if the host has one)."""
    from urllib.parse import urlsplit

    parts = urlsplit(host)
    prefix = parts.path.rstrip("/").removesuffix("/pipeline")  # the dashboard sits next to /pipeline
    url = f"{parts.scheme}://{parts.netloc}{prefix}/api/workgroup/env-info"
    try:
        response = client.http.get(url)
    except httpx.HTTPError:
        return None, []
    if response.status_code != 200 or "json" not in response.headers.get("content-type", ""):
        return None, []
    body = response.json()
    user = body.get("user") if isinstance(body, dict) else None
    spaces = [str(n.get("namespace")) for n in body.get("namespaces", []) if isinstance(n, dict)] if user else []
    return (str(user) if user else None), spaces


_REFUSED = {
    "token": ("the bearer token", "check KFP_CI_TOKEN or the token file (expired, or an issuer/audience the gateway "
              "does not trust)"),
    "cookie": ("the session cookie", "it expired or belongs to another host; log in again (kfp-ci login "
               "--print-cookie)"),
}


def _namespace_allowed(client: Any, namespace: str) -> str:
    """Why KFP refuses the logged-in user ``namespace`` ('' when it lets them list experiments there)."""
    try:
        client.list_experiments(namespace=namespace, page_size=1)
    except Unauthenticated:
        raise
    except PermissionDenied:
        return "refused access"
    except ApiError as exc:
        return f"answered {exc}"
    return ""


def login_command(settings: Settings, save: bool = False, print_cookie: bool = False,
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
        auth = build_auth(settings, host, debug_dir=debug_dir) or NoCredentials()
    client = Client(host, namespace=settings.namespace, auth=auth, verify=verify(settings), timeout=settings.timeout)
    with client:
        try:
            server = client.server
        except (AuthError, Unauthenticated) as exc:
            if session is not None and session.kind == "cached":
                _cache.forget(host)  # refused: later commands must not reuse it
            if isinstance(exc, Unauthenticated) and mode in _REFUSED:
                what, advice = _REFUSED[mode]
                raise AuthError(f"the server refused {what} (HTTP {exc.status} on healthz): {advice}") from None
            raise
        user, spaces = _namespaces(client, host)
        allowed = _namespace_allowed(client, settings.namespace) if server.multi_user and settings.namespace else None
    who = user or settings.username or "anonymous"
    how = {"none": "no auth", "token": "bearer token", "cookie": "cookie"}.get(mode, "dex session")
    if session is not None and session.kind not in ("", "cached"):
        how = f"dex via {session.kind}"
    _console.out(f"logged in to {host} as {who} ({how}; KFP {server.version or '?'}, API {server.api})")
    if server.multi_user:
        _console.out("namespaces: " + (", ".join(spaces) if spaces else "(none found)"))
        if allowed == "":
            _console.out(f"namespace {settings.namespace}: allowed")
        elif allowed is not None:
            _console.warn(f"namespace {settings.namespace}: KFP {allowed} for {who} (check --namespace / "
                          "KFP_CI_NAMESPACE and the profile's contributors)")
    cookie_header = session.header() if session is not None else (cookie_value(settings) if mode == "cookie" else None)
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
