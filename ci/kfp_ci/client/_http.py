"""HTTP plumbing of the KFP client: hosts, the httpx client, basic auths, response sniffing and error bodies.

Everything that turns an HTTP answer into either JSON or one :mod:`kfp_ci.errors` exception lives here, so the
client methods only ever see parsed JSON.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import warnings
from collections.abc import Callable, Generator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from kfp_ci import _secrets
from kfp_ci._version import __version__
from kfp_ci.errors import (
    ApiError,
    AuthError,
    Conflict,
    NotFound,
    NotKfpError,
    PermissionDenied,
    Unauthenticated,
    UsageError,
)

__all__ = [
    "LOGIN_PAGE",
    "USER_AGENT",
    "BearerToken",
    "CookieAuth",
    "TokenFile",
    "api_error",
    "build_http_client",
    "decode_json",
    "is_html",
    "looks_like_dashboard",
    "normalize_host",
]

USER_AGENT = f"kfp-ci/{__version__}"
LOGIN_PAGE = "got a login page: the session is missing or expired"
DASHBOARD = "got the Kubeflow dashboard: add /pipeline to the host"
DEFAULT_TOKEN_PATH = "/var/run/secrets/kubeflow/pipelines/token"  # noqa: S105 - a path, not a secret

_API_SUFFIX = re.compile(r"/apis/v[12]beta1(/.*)?$")


# --------------------------------------------------------------------------------------------------- hosts
def normalize_host(host: str) -> str:
    """``https://kf.example.com/pipeline/`` -> ``https://kf.example.com/pipeline``; no scheme -> UsageError."""
    text = (host or "").strip()
    if not text:
        raise UsageError("no KFP host given: pass --host or set KFP_CI_HOST (e.g. https://kubeflow.example.com/pipeline)")
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in 0-65535
    except ValueError as exc:
        raise UsageError(f"host {text!r} is not a valid URL ({exc}): write e.g. https://kubeflow.example.com/pipeline "
                         "or http://[::1]:8888") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(
            f"host {text!r} has no http:// or https:// scheme: write e.g. https://{text.split('://')[-1].lstrip('/')}"
        )
    if parts.username or parts.password:
        raise UsageError("the host must not contain credentials: use --auth and KFP_CI_PASSWORD/KFP_CI_TOKEN instead")
    path = _API_SUFFIX.sub("", parts.path.rstrip("/"))
    return f"{parts.scheme}://{parts.netloc}{path}"


# ---------------------------------------------------------------------------------------------------- auth
def header_secret(value: str, what: str) -> str:
    """A secret that goes into an HTTP header (token, cookie): registered for masking (every line of it), one
    trailing newline and surrounding spaces removed; a control character or non-ASCII text inside it is one
    UsageError that never repeats the value (HTTP header values are ASCII)."""
    try:
        value = _secrets.clean(value)
    except ValueError as exc:
        raise UsageError(f"{what} {exc}") from None
    if not value.isascii():
        raise UsageError(f"{what} holds non-ASCII characters: an HTTP header can carry ASCII only (check for a "
                         "pasted typographic quote or a byte-order mark)")
    return value


class BearerToken(httpx.Auth):
    """``Authorization: Bearer <token>``; never sends a cookie alongside it."""

    def __init__(self, token: str) -> None:
        token = header_secret(token, "the bearer token")
        if not token:
            raise UsageError("the bearer token is empty")
        self._token = token

    def token(self) -> str:
        return self._token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.pop("Cookie", None)
        request.headers["Authorization"] = f"Bearer {self.token()}"
        yield request


class TokenFile(BearerToken):
    """A bearer token read from a file on every request (Kubernetes projected service-account tokens rotate).

    ``TokenFile()`` with no path uses ``KF_PIPELINES_SA_TOKEN_PATH``, else the in-cluster default path.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        chosen = path if path is not None else os.environ.get("KF_PIPELINES_SA_TOKEN_PATH") or DEFAULT_TOKEN_PATH
        self.path = Path(chosen)
        self.token()  # fail early, with the path named

    def token(self) -> str:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except OSError as exc:
            raise AuthError(f"cannot read the token file {self.path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise UsageError(f"the token file {self.path} is not UTF-8 text") from None
        value = header_secret(raw, f"the token file {self.path}")
        if not value:
            raise AuthError(f"the token file {self.path} is empty")
        return value


class SessionCookie(httpx.Auth):
    """An Auth that sends a session as a ``Cookie`` header.

    httpx drops a ``Cookie`` header on every redirect (it expects cookies in its jar), so a same-host redirect of
    an API call (a trailing slash, an http -> https upgrade) would arrive without the session. The client puts
    the header back on such hops (:func:`build_http_client`); a hop to another host never gets it.
    """

    def cookie_header(self) -> str | None:
        raise NotImplementedError


class CookieAuth(SessionCookie):
    """A raw ``Cookie`` header (``"name=value; other=value"``), e.g. a dashboard session; never with a Bearer."""

    def __init__(self, cookie_header: str) -> None:
        cookie_header = header_secret(cookie_header, "the cookie")
        if not cookie_header:
            raise UsageError("the cookie is empty")
        _secrets.register(cookie_header)
        for part in cookie_header.split(";"):
            _secrets.register(part.strip().partition("=")[2])
        self._cookie_header = cookie_header

    def cookie_header(self) -> str:
        return self._cookie_header

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.pop("Authorization", None)
        request.headers["Cookie"] = self._cookie_header
        yield request


# -------------------------------------------------------------------------------------------------- client
_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


class _LazyTransport(httpx.BaseTransport):
    """Builds its transport on first use: loading CA certificates costs ~50 ms that plain HTTP never needs."""

    def __init__(self, factory: Callable[[], httpx.BaseTransport]) -> None:
        self._factory = factory
        self._inner: httpx.BaseTransport | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self._inner is None:
            self._inner = self._factory()
        return self._inner.handle_request(request)

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def _cookie_on_redirects(auth: SessionCookie) -> Callable[[httpx.Request], None]:
    """A request hook: a redirect hop to the origin the session was sent to (or its https upgrade) gets it again."""
    sent_to: set[tuple[str, str, int | None]] = set()

    def hook(request: httpx.Request) -> None:
        if "cookie" in request.headers:  # the auth flow's own request
            sent_to.add(_origin(request.url))
            return
        scheme, host, port = _origin(request.url)
        upgrade = scheme == "https" and any(h == host and s == "http" for s, h, _p in sent_to)
        if (scheme, host, port) in sent_to or upgrade:
            header = auth.cookie_header()
            if header:
                request.headers["Cookie"] = header

    return hook


_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def _no_credentials_through_proxy(request: httpx.Request) -> None:
    """A request hook: credentials over plain http never go to a proxy (which would read them in clear text)."""
    if request.url.scheme != "http" or request.url.host in _LOOPBACK_NAMES:
        return
    if "authorization" not in request.headers and "cookie" not in request.headers:
        return
    import urllib.request

    proxies = urllib.request.getproxies_environment()
    bypass: Callable[[str], bool] = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined,unused-ignore]
    if not (proxies.get("http") or proxies.get("all")) or bypass(request.url.host):
        return
    raise UsageError(f"refusing to send credentials over plain http to {request.url.host} through the proxy set in "
                     "HTTP_PROXY/ALL_PROXY (it would read them in clear text): use https, or add the host to NO_PROXY")


def _tls(verify: bool | str | os.PathLike[str] | ssl.SSLContext) -> bool | ssl.SSLContext:
    if isinstance(verify, (str, os.PathLike)):
        path = Path(verify)
        try:
            if path.is_file():
                return ssl.create_default_context(cafile=str(path))
            return ssl.create_default_context(capath=str(path))
        except (ssl.SSLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or type(exc).__name__
            raise UsageError(f"CA bundle {path} could not be loaded ({reason}): it must hold PEM certificates "
                             "(-----BEGIN CERTIFICATE-----); fix --ca-bundle / SSL_CERT_FILE / REQUESTS_CA_BUNDLE"
                             ) from None
    return verify


def build_http_client(
    *,
    auth: httpx.Auth | None,
    verify: bool | str | os.PathLike[str] | ssl.SSLContext,
    timeout: float | httpx.Timeout,
    transport: httpx.BaseTransport | None,
    event_hooks: Mapping[str, list[Any]] | None = None,
) -> httpx.Client:
    """The httpx client: TLS verified by default (CA bundle from env), proxies from env, kfp-ci User-Agent."""
    if verify is False:
        warnings.warn("TLS certificate verification is off (--insecure-skip-tls-verify)", stacklevel=3)
    elif verify is True:
        bundle = os.environ.get("KFP_CI_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE") or os.environ.get(
            "REQUESTS_CA_BUNDLE"
        )
        if bundle:
            verify = bundle
    if isinstance(verify, (str, os.PathLike)) and not Path(verify).exists():
        raise UsageError(f"CA bundle {verify} does not exist: fix --ca-bundle / SSL_CERT_FILE / REQUESTS_CA_BUNDLE")
    timeouts = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout, connect=min(10.0, timeout))
    hooks = {name: list(funcs) for name, funcs in (event_hooks or {}).items()}
    if isinstance(auth, SessionCookie):
        hooks.setdefault("request", []).append(_cookie_on_redirects(auth))
    common: dict[str, Any] = {
        "auth": auth,
        "timeout": timeouts,
        "trust_env": True,
        "follow_redirects": True,
        "headers": {"User-Agent": USER_AGENT, "Accept": "application/json"},
        "event_hooks": hooks,
    }
    if transport is not None:
        return httpx.Client(transport=transport, **common)
    if any(os.environ.get(name) for name in _PROXY_VARS):
        # Loopback never goes through a proxy (the proxy could not reach it, and plain-http credentials would
        # cross it in clear text); any other plain-http request with credentials that a proxy would carry is
        # refused before it is sent.
        hooks.setdefault("request", []).append(_no_credentials_through_proxy)
        direct = httpx.HTTPTransport(verify=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), trust_env=False)
        loopback: dict[str, httpx.BaseTransport | None] = {
            f"http://{name}": direct for name in ("localhost", "127.0.0.1", "[::1]")}
        return httpx.Client(verify=_tls(verify), mounts=loopback, **common)
    # Plain http:// never does TLS (a context without CAs fails closed); https:// gets the real one on first use.
    plain = httpx.HTTPTransport(verify=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
    secure = _LazyTransport(lambda: httpx.HTTPTransport(verify=_tls(verify)))
    return httpx.Client(transport=plain, mounts={"https://": secure}, **common)


# ------------------------------------------------------------------------------------------------ sniffing
def is_html(response: httpx.Response) -> bool:
    ctype = response.headers.get("content-type", "").lower()
    if "html" in ctype:
        return True
    head = response.content[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body"))


def looks_like_dashboard(response: httpx.Response) -> bool:
    """The Kubeflow central dashboard (not a login page)."""
    text = response.text[:20000].lower()
    if looks_like_login(response):
        return False
    return "centraldashboard" in text or "central dashboard" in text or "<title>kubeflow" in text


def looks_like_login(response: httpx.Response) -> bool:
    path = response.url.path.lower()
    if any(part in path for part in ("/dex/", "/oauth2/", "/auth/", "/login")):
        return True
    text = response.text[:20000].lower()
    return 'type="password"' in text or "type='password'" in text or "sign in" in text or "log in" in text


def html_error(response: httpx.Response) -> AuthError | NotKfpError:
    if looks_like_dashboard(response):
        return NotKfpError(DASHBOARD)
    return AuthError(LOGIN_PAGE, hint=f"HTTP {response.status_code} text/html from {_where(response)}")


def _where(response: httpx.Response) -> str:
    url = response.url
    return f"{url.scheme}://{url.host}{':' + str(url.port) if url.port else ''}{url.path}"


def decode_json(response: httpx.Response) -> Any:
    """The JSON body of a 2xx answer; HTML or any other non-JSON raises the error naming what to fix."""
    if is_html(response):
        raise html_error(response)
    content = response.content
    if not content.strip():
        return {}
    try:
        return json.loads(content)
    except (ValueError, UnicodeDecodeError):
        snippet = response.text[:80].strip()
        raise NotKfpError(
            f"{_where(response)} answered HTTP {response.status_code} with a body that is not JSON ({snippet!r}): "
            "check that the host is the KFP API (https://<kubeflow>/pipeline or http://ml-pipeline:8888)"
        ) from None


# ------------------------------------------------------------------------------------------------- errors
def error_message(body: Any) -> str:
    """The user-facing text of an error body of any KFP generation (``details[].message`` first)."""
    if not isinstance(body, Mapping):
        return str(body)
    for detail in body.get("details") or []:
        if isinstance(detail, Mapping):
            for key in ("message", "error_message"):
                text = detail.get(key)
                if isinstance(text, str) and text.strip():
                    return text.strip()
    for key in ("error_message", "message", "error", "error_details"):
        text = body.get(key)
        if isinstance(text, str) and text.strip():
            return text.strip()
    return json.dumps(body)[:300]


_GRPC_STATUS = {3: 400, 5: 404, 6: 409, 7: 403, 16: 401, 13: 500, 9: 400, 14: 503}


def api_error(response: httpx.Response, *, action: str = "") -> Exception:
    """One exception for a non-2xx answer: ApiError subclasses, or AuthError/NotKfpError for HTML."""
    status = response.status_code
    if is_html(response):
        if status in (401, 403) or status < 400 or looks_like_login(response):
            return html_error(response)
        if looks_like_dashboard(response):
            return NotKfpError(DASHBOARD)
        return ApiError(status, f"HTTP {status} with an HTML page from {_where(response)}{_suffix(action)}")
    text = response.text.strip()
    message = text[:500] or response.reason_phrase or f"HTTP {status}"
    if text.startswith("{"):
        try:
            message = error_message(json.loads(text))
        except ValueError:
            pass
        if message in ("{}", ""):
            message = f"HTTP {status} {response.reason_phrase}".strip()
    prefix = f"{action}: " if action else ""
    full = f"{prefix}{message}"
    lowered = message.lower()
    if status == 404:
        not_found = NotFound(status, full)
        not_found.body = text[:2000]  # type: ignore[attr-defined]
        return not_found
    if status == 409 or (status == 500 and "already exist" in lowered):
        return Conflict(status, full)
    if status == 403:
        hint = "the mesh denied access (RBAC); check the namespace and the identity" if "rbac" in lowered else None
        return PermissionDenied(status, full, hint=hint)
    if status == 401:
        return Unauthenticated(status, full, hint="the credentials are missing or expired")
    if "multi-user" in lowered and "namespace" in lowered:
        return ApiError(status, full, hint="KFP runs in multi-user mode: pass --namespace (your profile namespace)")
    return ApiError(status, full)


def _suffix(action: str) -> str:
    return f" ({action})" if action else ""
