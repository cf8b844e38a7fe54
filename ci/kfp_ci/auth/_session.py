"""``DexSession``: an httpx Auth that sends the dashboard session cookies and logs in again once when they expire."""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator

import httpx

from kfp_ci.auth._dex import Session
from kfp_ci.client import SessionCookie, is_html, looks_like_login
from kfp_ci.errors import AuthError

__all__ = ["NO_CREDENTIALS", "DexSession", "NoCredentials", "needs_login"]


NO_CREDENTIALS = ("set KFP_CI_USERNAME and KFP_CI_PASSWORD (Dex), KFP_CI_TOKEN (token) or KFP_CI_COOKIE (cookie), "
                  "or run kfp-ci login --save")


def needs_login(response: httpx.Response) -> bool:
    """401, an HTML 403 (sign-in page) or a login page answered where JSON was expected."""
    if response.status_code == 401:
        return True
    if response.status_code == 403:
        return is_html(response) or response.text.strip() == "{}"
    return response.status_code == 200 and is_html(response) and looks_like_login(response)


class DexSession(SessionCookie):
    """Cookie session; on expiry calls ``relogin`` once and replays the request (never with a Bearer header)."""

    requires_request_body = True
    requires_response_body = True

    def __init__(self, session: Session | None, relogin: Callable[[], Session] | None,
                 on_new_session: Callable[[Session], None] | None = None,
                 on_refused: Callable[[], None] | None = None) -> None:
        self.session = session
        self._relogin = relogin
        self._on_new = on_new_session
        self._on_refused = on_refused
        self._lock = threading.Lock()
        self.logins = 0

    def _login(self, stale: Session | None) -> Session:
        with self._lock:
            if self.session is not None and self.session is not stale:
                return self.session  # another thread already logged in again
            if stale is not None and self._on_refused is not None:
                self._on_refused()  # e.g. remove the saved session file: no later command reuses it
                self._on_refused = None
            if self._relogin is None:
                raise AuthError("the saved session expired or was refused: run kfp-ci login --save again, or set "
                                "KFP_CI_USERNAME and KFP_CI_PASSWORD")
            self.session = self._relogin()
            self.logins += 1
            if self._on_new is not None:
                self._on_new(self.session)
            return self.session

    def cookie_header(self) -> str | None:
        return self.session.header() if self.session is not None else None

    def _apply(self, request: httpx.Request, session: Session) -> None:
        request.headers.pop("Authorization", None)
        request.headers["Cookie"] = session.header()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        session = self.session or self._login(None)
        self._apply(request, session)
        response = yield request
        if not needs_login(response):
            return
        fresh = self._login(session)
        self._apply(request, fresh)
        yield request


class NoCredentials(httpx.Auth):
    """Mode ``none``: sends nothing; a login page, a sign-in 403 or a 401 becomes one line saying what to set."""

    requires_response_body = True

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        response = yield request
        if needs_login(response):
            url = response.url
            where = f"{url.scheme}://{url.netloc.decode()}{url.path}"
            kind = ", a login page" if is_html(response) else ""
            raise AuthError(f"the server requires a login (HTTP {response.status_code}{kind} at {where}): "
                            f"{NO_CREDENTIALS}")
