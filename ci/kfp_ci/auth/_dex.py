"""The Dex login walker: one cookie jar, httpx, the page reader of ``_page``; every Kubeflow generation's chain.

Walks oauth2-proxy (403 sign-in page -> ``/oauth2/start``, 1.9.0's Grant Access page, split session cookies)
and oidc-authservice (302 chain, both Dex URL shapes, ``oidc_state_csrf``) by reading each page: the connector
is followed by its link, forms are posted to their ``action`` resolved against the current URL. Success is
proven: the session cookie(s) exist and an authenticated call answers JSON (``kfp-ci login``'s own healthz,
or the first API call of the command that logged in).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

import httpx

from kfp_ci import _console, _secrets
from kfp_ci.auth._page import Page, parse_page
from kfp_ci.errors import ConnectError, LoginError, UsageError

__all__ = ["SESSION_COOKIE", "Session", "check_plain_http", "dex_login", "healthz_body", "is_loopback",
           "verify_session"]

SESSION_COOKIE = re.compile(r"^(oauth2_proxy_kubeflow(_\d+)?|_oauth2_proxy(_\d+)?|authservice_session)$")
MAX_STEPS = 30
_HEALTHZ = ("/apis/v2beta1/healthz", "/apis/v1beta1/healthz")


@dataclass(slots=True)
class Session:
    """A logged-in dashboard session: the session cookies only (never the CSRF/state ones)."""

    cookies: dict[str, str] = field(default_factory=dict)
    kind: str = ""

    def header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in sorted(self.cookies.items()))


def is_loopback(host: str) -> bool:
    """``localhost`` and loopback addresses; ``*.localhost`` only when every address it resolves to is loopback."""
    if host in ("localhost", "localhost.localdomain"):
        return True
    if host.endswith(".localhost"):
        import socket

        try:
            infos = socket.getaddrinfo(host, None)
        except (OSError, UnicodeError):
            return False
        addresses = {info[4][0] for info in infos}
        return bool(addresses) and all(ipaddress.ip_address(str(a).split("%")[0]).is_loopback for a in addresses)
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_plain_http(url: str, allow: bool, what: str) -> None:
    """Refuse to send ``what`` over plain http to a non-loopback host unless allowed (then warn)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or is_loopback(parts.hostname or ""):
        return
    if not allow:
        raise UsageError(f"refusing to send {what} over plain http to {parts.hostname}: use https, or pass "
                         "--allow-insecure-http if this load balancer really has no TLS")
    _console.warn(f"sending {what} over plain http to {parts.hostname} (--allow-insecure-http)")


def _origin(url: str | httpx.URL) -> tuple[str, str]:
    parts = urlsplit(str(url))
    return parts.scheme, parts.netloc.lower()


def _strip(url: str) -> str:
    """The URL without its query (queries carry state ids; messages name the path only)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


class _Walker:
    def __init__(self, http: httpx.Client, host: str, username: str, password: str, connector: str | None,
                 debug_dir: Path | None, allow_insecure_http: bool) -> None:
        self.http = http
        self.host = host.rstrip("/")
        self.username = username
        self.password = password
        self.connector = connector
        self.debug_dir = debug_dir
        self.allow_http = allow_insecure_http
        self.origin = _origin(self.host)
        self.posted = False
        self.dumps = 0
        self.secure_over_http: set[str] = set()
        _secrets.register(password)

    # ------------------------------------------------------------------------------------------ transport
    def same_host(self, url: str) -> bool:
        """Same origin, or the same host name upgraded from http to https (a load balancer's redirect)."""
        scheme, netloc = _origin(url)
        if (scheme, netloc) == self.origin:
            return True
        return (urlsplit(url).hostname == urlsplit(self.host).hostname and scheme == "https"
                and self.origin[0] == "http")

    def send(self, method: str, url: str, **kwargs: object) -> httpx.Response:
        if not self.same_host(url):
            host = urlsplit(url).hostname or url
            if host.endswith((".svc", ".cluster.local")) or ("." not in host and not is_loopback(host)):
                raise LoginError(f"the login redirected to the in-cluster Dex URL {_strip(url)}, which this runner "
                                 "cannot reach: oauth2-proxy has an absolute login_url or OIDC discovery on; set "
                                 'login_url = "/dex/auth" and skip_oidc_discovery = true (oidc-authservice: '
                                 "OIDC_AUTH_URL=/dex/auth)")
            raise LoginError(f"the login redirected off {self.origin[1]} to {_strip(url)}: not following it "
                             "with credentials (log in with a token or a cookie instead)")
        try:
            response = self.http.request(method, url, follow_redirects=False, **kwargs)  # type: ignore[arg-type]
        except httpx.ConnectError as exc:
            text = str(exc)
            if "CERTIFICATE" in text.upper() or "SSL" in text.upper():
                raise ConnectError(f"TLS verification failed for {self.origin[1]}: pass --ca-bundle with the CA "
                                   "that signed its certificate") from None
            raise ConnectError(f"cannot connect to {self.origin[1]}: {text}") from None
        except httpx.TimeoutException:
            raise ConnectError(f"{self.origin[1]} did not answer in time during the login") from None
        if urlsplit(url).scheme == "http":
            for header in response.headers.get_list("set-cookie"):
                attributes = [a.strip().lower() for a in header.split(";")[1:]]
                if "secure" in attributes:
                    self.secure_over_http.add(header.partition("=")[0].strip())
        return response

    def csrf_error(self, url: str, status: int, text: str) -> LoginError:
        why = "a proxy between the runner and the gateway may drop cookies"
        if self.secure_over_http:
            why = ("the gateway sets Secure cookies over plain http, which no client sends back: use the https "
                   "URL (or turn off oauth2-proxy's cookie_secure / FORCE_HTTPS)")
        return LoginError(f"the login failed a CSRF/state check at {_strip(url)} (HTTP {status}): "
                          f"{text.strip().rstrip('.')}; {why}")

    # ------------------------------------------------------------------------------------------------ walk
    def run(self) -> Session:
        response = self.send("GET", self.host + "/", headers={"Accept": "text/html"})
        if response.status_code == 200:  # no gateway redirect or sign-in page at all: is the API simply open?
            for version in ("v2beta1", "v1beta1"):
                probe = self.send("GET", f"{self.host}/apis/{version}/healthz", headers={"Accept": "application/json"})
                if probe.status_code != 404:
                    break
            if healthz_body(probe) is not None:
                raise LoginError(f"{self.host} needs no login (its API answers without a session): use --auth none "
                                 "(or auto)")
        for _ in range(MAX_STEPS):
            session = self.session()
            if session.cookies:
                return session
            if response.status_code in (301, 302, 303, 307, 308):
                target = urljoin(str(response.url), response.headers.get("location", ""))
                response = self.send("GET", target, headers={"Accept": "text/html"})
                continue
            response = self.step(response)
        raise LoginError(f"the login did not finish after {MAX_STEPS} steps (last: {_strip(str(response.url))}, "
                         f"HTTP {response.status_code})")

    def session(self) -> Session:
        cookies = {c.name: c.value for c in self.http.cookies.jar if SESSION_COOKIE.match(c.name) and c.value}
        for value in cookies.values():
            _secrets.register(value)
        kind = "authservice" if "authservice_session" in cookies else "oauth2-proxy" if cookies else ""
        return Session(cookies, kind)

    def step(self, response: httpx.Response) -> httpx.Response:
        url = str(response.url)
        ctype = response.headers.get("content-type", "")
        if "html" not in ctype and not response.text.lstrip().startswith("<"):
            text = response.text.strip()
            if "CSRF" in text or "state" in text.lower():
                raise self.csrf_error(url, response.status_code, text[:160])
            if response.status_code == 401 and text in ("{}", ""):
                raise self.not_understood(response, "a 401 for an API route: the host URL must be the dashboard")
            raise self.not_understood(response, "not a login page")
        page = parse_page(response.text)
        forms = page.forms
        # oauth2-proxy sign-in page (KF 1.9.1+): submit its GET form to /oauth2/start
        for form in forms:
            action = form.action
            if action.rstrip("/").endswith("/oauth2/start"):
                query = urlencode(form.values())
                return self.send("GET", urljoin(url, action) + ("?" + query if query else ""),
                                 headers={"Accept": "text/html"})
        # Dex password form
        for form in forms:
            if form.has_input("password") and form.has_input("login"):
                if form.action.rstrip("/").endswith("/oauth2/sign_in"):
                    continue  # oauth2-proxy htpasswd form, not Dex
                error = page.by_id("login-error")
                if error is None:
                    error = page.by_class("dex-error-box")
                if error is not None and self.posted:
                    raise LoginError(f"Dex rejected the credentials of {self.username} (HTTP {response.status_code}): "
                                     f"{error} Check KFP_CI_USERNAME and the password")
                if self.posted:
                    raise self.not_understood(response, "the password form again without an error")
                m = re.search(r"/auth/([^/?#]+)", urlsplit(url).path)
                if self.connector and m is not None and m.group(1) != self.connector:
                    raise LoginError(f"Dex offers no connector {self.connector!r}: choose --dex-connector from: "
                                     f"{m.group(1)} (the only one)")
                target = urljoin(url, form.action or url)
                check_plain_http(target, self.allow_http, "the Dex password")
                self.posted = True
                data = {**form.values(), "login": self.username, "password": self.password}
                return self.send("POST", target, data=data, headers={"Accept": "text/html"})
        # Dex approval page (KF 1.9.0): the form with approval=approve
        for form in forms:
            if form.has_input("approval", "approve"):
                target = urljoin(url, form.action or url)
                return self.send("POST", target, data=form.values(), headers={"Accept": "text/html"})
        # Dex connector selection
        links = self.connectors(page, url)
        if links:
            wanted = self.connector or next((c for c in ("local", "ldap") if c in links), None)
            if wanted is None and len(links) == 1:
                wanted = next(iter(links))
            if wanted not in links:
                offered = ", ".join(f"{cid} ({name})" for cid, (name, _) in sorted(links.items()))
                if wanted is None:
                    raise LoginError(f"Dex offers several connectors: choose one with --dex-connector: {offered}")
                raise LoginError(f"Dex offers no connector {wanted!r}: choose --dex-connector from: {offered}")
            return self.send("GET", links[wanted][1], headers={"Accept": "text/html"})
        text = page.text
        if "CSRF" in text or "Missing url parameter: state" in text:
            raise self.csrf_error(url, response.status_code, page.message())
        heading = page.by_class("theme-heading") is not None or page.by_class("status-code") is not None
        if heading and response.status_code >= 400:
            raise LoginError(f"the login failed at {_strip(url)} (HTTP {response.status_code}): {page.message()}")
        raise self.not_understood(response, "no sign-in form, Dex form, approval form or connector link")

    @staticmethod
    def connectors(page: Page, url: str) -> dict[str, tuple[str, str]]:
        found: dict[str, tuple[str, str]] = {}
        for raw, text in page.links:
            href = urljoin(url, raw)
            m = re.search(r"/auth/([^/?#]+)$", urlsplit(href).path)
            if m is None:
                continue
            name = text.removeprefix("Log in with ").strip() or m.group(1)
            found[m.group(1)] = (name, href)
        return found

    def not_understood(self, response: httpx.Response, why: str) -> LoginError:
        where = _strip(str(response.url))
        saved = ""
        if self.debug_dir is not None:
            self.debug_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.debug_dir.chmod(0o700)  # an existing folder with loose permissions is tightened too
            self.dumps += 1
            path = self.debug_dir / f"login-page-{self.dumps}.html"
            text = _secrets.redact(response.text).replace(self.password, _secrets.MASK)
            for cookie in self.http.cookies.jar:  # state/CSRF cookies of the flow too
                if cookie.value and len(cookie.value) >= 4:
                    text = text.replace(cookie.value, _secrets.MASK)
            path.write_text(text, encoding="utf-8")
            path.chmod(0o600)
            saved = f"; saved to {path}"
        else:
            saved = "; pass --debug-dir to save the page"
        return LoginError(f"the login flow did not understand the page at {where} (HTTP {response.status_code}, "
                          f"{why}){saved}")


def healthz_body(response: httpx.Response) -> dict[str, object] | None:
    """The JSON object of a 200 healthz, else None (KFP 1.x writes its JSON as text/plain, so sniff the body)."""
    if response.status_code != 200 or "html" in response.headers.get("content-type", ""):
        return None
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def verify_session(http: httpx.Client, host: str, session: Session,
                   send: Callable[..., httpx.Response] | None = None) -> dict[str, object]:
    """An authenticated healthz that answers JSON; returns its body. Raises LoginError otherwise.

    ``send(method, url, headers=...)`` defaults to ``http.request`` without following redirects.
    """
    def plain(method: str, url: str, **kwargs: Any) -> httpx.Response:
        return http.request(method, url, follow_redirects=False, **kwargs)

    last = ""
    for suffix in _HEALTHZ:
        response = (send or plain)("GET", host.rstrip("/") + suffix,
                                   headers={"Cookie": session.header(), "Accept": "application/json"})
        ctype = response.headers.get("content-type", "")
        body = healthz_body(response)
        if body is not None:
            return body
        last = f"HTTP {response.status_code} {ctype.split(';')[0] or 'no content type'}"
        if response.status_code != 404:
            break
    raise LoginError(f"the login set session cookies, but the authenticated healthz at {host}{_HEALTHZ[0]} "
                     f"answered {last}, not JSON: check the host (the API is usually under /pipeline)")


def dex_login(http: httpx.Client, host: str, username: str, password: str, *, connector: str | None = None,
              debug_dir: Path | None = None, allow_insecure_http: bool = False, prove: bool = True) -> Session:
    """Log in through the dashboard's Dex; ``http`` is a fresh client (its jar is the flow's).

    ``prove``: check the session with an authenticated healthz (one request). ``kfp-ci login`` proves it; a
    command that logs in on its way to an API call skips it, because that call is the proof (a login page or
    the dashboard instead of JSON is the client's loud auth error).
    """
    walker = _Walker(http, host, username, password, connector, debug_dir, allow_insecure_http)
    session = walker.run()
    http.cookies.clear()
    if prove:
        verify_session(http, host, session, walker.send)
    return session

