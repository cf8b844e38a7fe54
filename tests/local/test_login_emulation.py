"""The embedded server's login emulation (``--auth token|dex``), walked step by step like a browser would.

Every expectation comes from ``shared/reference/kubeflow-login.md`` (sections 0, 1 and 5): statuses, ``Location``
paths, cookie names and the HTML structure of oauth2-proxy's and Dex's pages. The walker is plain httpx (no
redirect following unless said) and BeautifulSoup; it never imports the server's login module.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
from bs4 import BeautifulSoup, Tag

USER = "user@example.com"
PASSWORD = "12341234"
OTHER = "other@example.com"
PROFILES = {USER: ("kubeflow-user-example-com",), OTHER: ("team-other",)}
BROWSER = {"accept": "text/html,application/xhtml+xml"}
HEALTHZ = "/pipeline/apis/v2beta1/healthz"


class Browser:
    """One cookie jar, redirects followed by hand so every hop can be checked."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = httpx.Client(base_url=base, follow_redirects=False, timeout=10.0, headers=BROWSER)
        self.url = base + "/"

    def close(self) -> None:
        self.http.close()

    def get(self, url: str, **kw: Any) -> httpx.Response:
        self.url = urljoin(self.url, url)
        return self.http.get(self.url, **kw)

    def post(self, url: str, data: dict[str, str], **kw: Any) -> httpx.Response:
        self.url = urljoin(self.url, url)
        return self.http.post(self.url, data=data, **kw)

    def follow(self, response: httpx.Response, status: int, path: str) -> httpx.Response:
        """Assert a redirect with ``status`` to a path-relative ``Location`` starting with ``path``; GET it."""
        assert response.status_code == status, (response.status_code, response.text[:300])
        location = response.headers["location"]
        assert location.startswith(path), location
        assert not urlsplit(location).netloc, "Go's http.Redirect sends path-absolute locations"
        return self.get(location)

    def cookie_names(self) -> set[str]:
        return {c.name for c in self.http.cookies.jar}


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """``name -> full Set-Cookie line`` of one response."""
    return {line.split("=", 1)[0]: line for line in response.headers.get_list("set-cookie")}


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def soup(response: httpx.Response) -> BeautifulSoup:
    assert response.headers["content-type"].startswith("text/html")
    return BeautifulSoup(response.text, "html.parser")


def one(node: Tag, *args: Any, **kw: Any) -> Tag:
    """The one element ``node.find(...)`` must find."""
    found = node.find(*args, **kw)
    assert isinstance(found, Tag), (args, kw)
    return found


def text(node: Tag, *args: Any, **kw: Any) -> str:
    return one(node, *args, **kw).get_text(strip=True)


def attr(tag: Tag, name: str) -> str:
    value = tag.get(name)
    assert isinstance(value, str), (name, value)
    return value


def hidden_fields(form: Tag) -> dict[str, str]:
    return {attr(i, "name"): attr(i, "value") for i in form.find_all("input", type="hidden") if isinstance(i, Tag)}


def password_form(page: httpx.Response) -> tuple[str, BeautifulSoup]:
    """Dex's password page (section 5 (4)): the form, its action, the two inputs, the Login button."""
    assert page.status_code in (200, 401)
    doc = soup(page)
    assert text(doc, "h2", class_="theme-heading") == "Log in to Your Account"
    form = doc.find("form", method="post")
    assert form is not None and form.get("action")
    assert form.find("input", attrs={"name": "login", "id": "login", "type": "text"}) is not None
    assert form.find("input", attrs={"name": "password", "id": "password", "type": "password"}) is not None
    assert text(form, "button", id="submit-login") == "Login"
    assert form.find("input", type="hidden") is None, "Dex's form has no hidden inputs: state is in the action"
    return str(form["action"]), doc


def login_error(doc: BeautifulSoup) -> str | None:
    box = doc.find(id="login-error")
    return None if box is None else str(box.get_text(strip=True))


@pytest.fixture
def browsers() -> Iterator[list[Browser]]:
    made: list[Browser] = []
    yield made
    for b in made:
        b.close()


def browser(browsers: list[Browser], srv: Any) -> Browser:
    b = Browser(srv.url)
    browsers.append(b)
    return b


def json_401(response: httpx.Response) -> bool:
    return (response.status_code == 401 and response.headers["content-type"].startswith("application/json")
            and response.text == "{}")


# ------------------------------------------------------------------------------------------------ token mode
def test_token_mode_bearer_from_list_else_401_empty_json(kfp_server: Any) -> None:
    srv = kfp_server(auth="token", execute=False, multi_user=True, profiles=PROFILES,
                     tokens={"tok-user-1": USER, "tok-other-2": OTHER})
    with httpx.Client(base_url=srv.url, timeout=10.0) as http:
        assert json_401(http.get(HEALTHZ))
        assert json_401(http.get(HEALTHZ, headers={"authorization": "Bearer tok-nope"}))
        assert json_401(http.get(HEALTHZ, headers={"authorization": "Basic dG9rLXVzZXItMQ=="}))
        # a client-sent identity header is no credential
        assert json_401(http.get(HEALTHZ, headers={"kubeflow-userid": USER}))
        ok = http.get(HEALTHZ, headers={"authorization": "Bearer tok-user-1"})
        assert ok.status_code == 200 and "commit_sha" in ok.json()
        own = {"authorization": "Bearer tok-user-1", "kubeflow-userid": OTHER}  # spoof attempt is dropped
        listed = http.get("/apis/v2beta1/experiments", params={"namespace": "kubeflow-user-example-com"}, headers=own)
        assert listed.status_code == 200, listed.text
        denied = http.get("/apis/v2beta1/experiments", params={"namespace": "team-other"}, headers=own)
        assert denied.status_code == 403 and "RBAC: access denied" in denied.text
        theirs = http.get("/apis/v2beta1/experiments", params={"namespace": "team-other"},
                          headers={"authorization": "Bearer tok-other-2"})
        assert theirs.status_code == 200, theirs.text


# ------------------------------------------------------------------------------------ oauth2-proxy (KF 1.9.1+)
def oauth2_login(b: Browser, start_path: str = "/pipeline/", *, password: str = PASSWORD,
                 connector: str | None = None, login: str = USER) -> httpx.Response:
    """Walk KF 1.9.1's chain (section 1(b)) from a browser GET of ``start_path``; returns the callback response."""
    page = b.get(start_path)
    assert page.status_code == 403
    doc = soup(page)
    assert text(doc, "title") == "Sign In"
    form = one(doc, "form", attrs={"action": "/oauth2/start"})
    assert attr(form, "method").upper() == "GET"
    assert text(form, "button") == "Sign in with Dex"
    rd = attr(one(form, "input", attrs={"name": "rd", "type": "hidden"}), "value")
    assert rd == start_path
    assert doc.find("form", attrs={"action": "/oauth2/sign_in"}) is None, "no htpasswd form in Kubeflow"

    start = b.get("/oauth2/start", params={"rd": rd})
    assert start.status_code == 302
    csrf = set_cookies(start)
    assert "oauth2_proxy_kubeflow_csrf" in csrf and "Path=/" in csrf["oauth2_proxy_kubeflow_csrf"]
    dex_auth = start.headers["location"]
    q = query(dex_auth)
    assert urlsplit(dex_auth).path == "/dex/auth"
    assert q["client_id"] == "kubeflow-oidc-authservice" and q["redirect_uri"] == "/oauth2/callback"
    assert q["response_type"] == "code" and q["code_challenge_method"] == "S256" and q["state"]
    assert q["prompt"] == "none" and "approval_prompt" not in q
    return dex_password_login(b, b.follow(start, 302, "/dex/auth?"), password=password, connector=connector,
                              login=login, callback="/oauth2/callback")


def dex_password_login(b: Browser, at_dex: httpx.Response, *, password: str, connector: str | None, login: str,
                       callback: str, old: bool = False) -> httpx.Response:
    """From the response to ``GET /dex/auth?...``: connector page or redirects, the form, the credential POST."""
    if connector is None:  # one connector: redirects straight to its form
        if old:
            page = b.follow(at_dex, 302, "/dex/auth/local?req=")
        else:
            hop = b.follow(at_dex, 302, "/dex/auth/local?")
            page = b.follow(hop, 302, "/dex/auth/local/login?back=&state=")
    else:
        assert at_dex.status_code == 200
        doc = soup(at_dex)
        assert text(doc, "h2", class_="theme-heading") == "Log in to dex"
        links = {a.get_text(" ", strip=True): attr(a, "href") for a in doc.select("div.theme-form-row a")}
        assert list(links) == ["Log in with Email", "Log in with LDAP"], "sorted by connector name"
        href = links["Log in with LDAP" if connector == "ldap" else "Log in with Email"]
        assert urlsplit(href).path == f"/dex/auth/{connector}"
        page = b.get(href)
        if old:
            assert query(href).keys() == {"req"}
        else:
            page = b.follow(page, 302, f"/dex/auth/{connector}/login?")
            assert query(b.url)["back"], "several connectors: the form links back to the selection page"
    action, doc = password_form(page)
    assert page.status_code == 200 and login_error(doc) is None
    label = text(doc, "label", attrs={"for": "login"})
    assert label == ("Username" if connector == "ldap" else "Email Address")
    if connector is not None:
        assert doc.find("a", string="Select another login method.") is not None
    assert urljoin(b.url, action) == b.url, "the form posts to its own URL (query included)"
    answer = b.post(action, {"login": login, "password": password})
    if password != PASSWORD:
        return answer
    assert answer.status_code == 303
    location = answer.headers["location"]
    assert location.startswith(("/dex/approval?", callback + "?")), location
    return answer


def test_oauth2_proxy_1_9_1_full_walk(kfp_server: Any, browsers: list[Browser]) -> None:
    srv = kfp_server(auth="dex", execute=False)
    b = browser(browsers, srv)
    posted = oauth2_login(b)
    callback = b.follow(posted, 303, "/oauth2/callback?")
    assert set(query(b.url)) >= {"code", "state"}
    assert callback.status_code == 302 and callback.headers["location"] == "/pipeline/"
    cookies = set_cookies(callback)
    assert "oauth2_proxy_kubeflow" in cookies and "oauth2_proxy_kubeflow_0" not in cookies
    assert "Max-Age=0" in cookies["oauth2_proxy_kubeflow_csrf"], "the CSRF cookie is cleared"
    assert all(len(line) <= 4000 for line in cookies.values())
    assert "oauth2_proxy_kubeflow" in b.cookie_names() and "oauth2_proxy_kubeflow_csrf" not in b.cookie_names()
    health = b.get(HEALTHZ)
    assert health.status_code == 200 and health.json()["commit_sha"]
    assert b.get("/pipeline/apis/v2beta1/pipelines").status_code == 200
    # the code is spent and the CSRF cookie gone: replaying the callback is oauth2-proxy's 403 page
    replay = b.get(callback.request.url.raw_path.decode())
    assert replay.status_code == 403 and "Login Failed" in replay.text


def test_oauth2_proxy_unauthenticated_api_401_and_ui_403(kfp_server: Any) -> None:
    srv = kfp_server(auth="dex", execute=False)
    with httpx.Client(base_url=srv.url, timeout=10.0) as http:
        for path in (HEALTHZ, "/apis/v1beta1/experiments", "/ml_metadata.MetadataStoreService/GetArtifacts"):
            assert json_401(http.get(path, headers=BROWSER)), path  # api_routes, whatever the Accept
        assert json_401(http.get("/", headers={"accept": "application/json"}))  # isAjax
        page = http.get("/", headers=BROWSER)
        assert page.status_code == 403 and "Sign in with Dex" in page.text
        # an unknown Bearer skips oauth2-proxy and has no principal: Istio's DENY policy answers
        denied = http.get(HEALTHZ, headers={"authorization": "Bearer not-a-jwt"})
        assert denied.status_code == 403 and denied.text == "RBAC: access denied"
        # the callback without the CSRF cookie is oauth2-proxy's 403 error page
        failed = http.get("/oauth2/callback", params={"code": "x", "state": "abc:/"}, headers=BROWSER)
        assert failed.status_code == 403
        assert "Unable to find a valid CSRF token" in soup(failed).get_text()
        assert text(soup(failed), class_="status-code") == "403"
        # Dex knows one static client and its registered redirect URI
        evil = http.get("/dex/auth", params={"client_id": "kubeflow-oidc-authservice", "redirect_uri": "/evil",
                                             "response_type": "code", "state": "x"})
        assert evil.status_code == 400 and "Unregistered redirect_uri" in text(soup(evil), "p")


def test_oauth2_proxy_wrong_password_401_form_with_error_box(kfp_server: Any, browsers: list[Browser]) -> None:
    srv = kfp_server(auth="dex", execute=False)
    b = browser(browsers, srv)
    failed = oauth2_login(b, password="not-the-password")
    assert failed.status_code == 401, "Dex >= 2.36 answers a wrong password with 401"
    _, doc = password_form(failed)
    assert login_error(doc) == "Invalid Email Address and password."
    assert attr(one(doc, "input", id="login"), "value") == USER
    assert doc.find(class_="dex-error-box") is not None
    # the same form still works
    ok = b.post(attr(one(doc, "form"), "action"), {"login": USER, "password": PASSWORD})
    assert ok.status_code == 303 and ok.headers["location"].startswith("/oauth2/callback?")


def test_wrong_password_status_option(kfp_server: Any, browsers: list[Browser]) -> None:
    srv = kfp_server(auth="dex", execute=False, dex_wrong_password_status=200)
    failed = oauth2_login(browser(browsers, srv), password="nope")
    assert failed.status_code == 200 and login_error(password_form(failed)[1]) == "Invalid Email Address and password."


def test_oauth2_proxy_1_9_0_grant_access_page(kfp_server: Any, browsers: list[Browser]) -> None:
    srv = kfp_server(auth="dex", execute=False, kubeflow_version="1.9.0")
    b = browser(browsers, srv)
    with httpx.Client(base_url=srv.url, timeout=10.0) as http:  # kfp sends Accept: application/json
        assert json_401(http.get(HEALTHZ, headers={"accept": "application/json"}))
    first = b.get("/pipeline/")
    assert first.status_code == 302, "skip_provider_button = true: no sign-in page"
    assert "oauth2_proxy_kubeflow_csrf" in set_cookies(first)
    q = query(first.headers["location"])
    assert q["approval_prompt"] == "force" and "prompt" not in q
    posted = dex_password_login(b, b.follow(first, 302, "/dex/auth?"), password=PASSWORD, connector=None,
                                login=USER, callback="/oauth2/callback")
    approval = b.follow(posted, 303, "/dex/approval?")
    aq = query(b.url)
    assert set(aq) == {"req", "hmac"}
    assert approval.status_code == 200
    doc = soup(approval)
    assert text(doc, "h2", class_="theme-heading") == "Grant Access"
    assert "Dex Login Application" in doc.get_text()
    forms = doc.find_all("form", method="post")
    assert len(forms) == 2 and all(f.get("action") is None for f in forms), "both forms post to the current URL"
    fields = [hidden_fields(f) for f in forms]
    assert fields == [{"req": aq["req"], "approval": "approve"}, {"req": aq["req"], "approval": "rejected"}]
    assert [text(f, "button") for f in forms] == ["Grant Access", "Cancel"]
    # a tampered hmac is refused
    tampered = b.http.post(b.url.replace(aq["hmac"], "AAAA"), data=fields[0])
    assert tampered.status_code == 401 and "Unauthorized request" in tampered.text
    granted = b.post(b.url, fields[0])
    callback = b.follow(granted, 303, "/oauth2/callback?")
    assert callback.status_code == 302 and callback.headers["location"] == "/pipeline/"
    assert b.get(HEALTHZ).status_code == 200


def test_oauth2_proxy_1_9_0_cancel_is_rejected(kfp_server: Any, browsers: list[Browser]) -> None:
    srv = kfp_server(auth="dex", execute=False, kubeflow_version="1.9.0")
    b = browser(browsers, srv)
    first = b.get("/")
    posted = dex_password_login(b, b.follow(first, 302, "/dex/auth?"), password=PASSWORD, connector=None,
                                login=USER, callback="/oauth2/callback")
    approval = b.follow(posted, 303, "/dex/approval?")
    cancel = soup(approval).find_all("form")[1]
    assert isinstance(cancel, Tag)
    rejected = b.post(b.url, hidden_fields(cancel))
    assert rejected.status_code == 500 and "Approval rejected." in rejected.text


def test_oauth2_proxy_connectors_ldap_session_split_into_cookies(kfp_server: Any, browsers: list[Browser]) -> None:
    """An LDAP login carries many groups: the session passes 4000 bytes and comes as ``_0``, ``_1``..."""
    srv = kfp_server(auth="dex", execute=False, connectors=("ldap", "local"))
    b = browser(browsers, srv)
    failed = oauth2_login(b, connector="ldap", login="user", password="wrong")
    assert failed.status_code == 401 and login_error(password_form(failed)[1]) == "Invalid Username and password."
    b = browser(browsers, srv)
    posted = oauth2_login(b, connector="ldap", login="user")
    callback = b.follow(posted, 303, "/oauth2/callback?")
    assert callback.status_code == 302
    cookies = set_cookies(callback)
    parts = sorted(name for name in cookies if name.startswith("oauth2_proxy_kubeflow_") and name[-1].isdigit())
    assert parts[:2] == ["oauth2_proxy_kubeflow_0", "oauth2_proxy_kubeflow_1"]
    assert "oauth2_proxy_kubeflow" not in cookies, "the unsplit name is absent"
    assert all(len(line) <= 4000 for line in cookies.values())
    assert sum(len(cookies[p].split(";")[0]) for p in parts) > 4000
    assert b.get(HEALTHZ).status_code == 200
    # every part is needed: the first one alone is no session
    first_only = {"oauth2_proxy_kubeflow_0": b.http.cookies.get("oauth2_proxy_kubeflow_0") or ""}
    with httpx.Client(base_url=srv.url, timeout=10.0, cookies=first_only) as http:
        assert json_401(http.get(HEALTHZ))
    # the local connector on the same server gives one small cookie
    b2 = browser(browsers, srv)
    small = set_cookies(b2.follow(oauth2_login(b2, connector="local"), 303, "/oauth2/callback?"))
    assert "oauth2_proxy_kubeflow" in small and "oauth2_proxy_kubeflow_0" not in small


# ---------------------------------------------------------------------------------- authservice (KF 1.0-1.8)
def authservice_start(b: Browser, path: str, callback: str) -> httpx.Response:
    first = b.get(path)
    assert first.status_code == 302
    location = first.headers["location"]
    q = query(location)
    assert urlsplit(location).path == "/dex/auth"
    assert q["client_id"] == "kubeflow-oidc-authservice" and q["redirect_uri"] == callback
    assert q["response_type"] == "code" and set(q["scope"].split()) >= {"openid", "email"} and q["state"]
    assert "Found" in first.text and "&amp;" in first.text, "Go's redirect body escapes the URL"
    return first


def test_authservice_1_8_api_call_ends_on_dex_html_with_200(kfp_server: Any) -> None:
    """The trap: an unauthenticated API call, redirects followed, is a 200 HTML page (what kfp.Client parses)."""
    srv = kfp_server(auth="dex", execute=False, dex_shape="authservice", kubeflow_version="1.8")
    with httpx.Client(base_url=srv.url, timeout=10.0, follow_redirects=True) as http:
        answer = http.get("/pipeline/apis/v2beta1/experiments", headers={"accept": "application/json"})
    assert answer.status_code == 200
    assert [r.status_code for r in answer.history] == [302, 302, 302]
    assert answer.url.path == "/dex/auth/local/login"
    password_form(answer)


def test_authservice_1_8_full_walk(kfp_server: Any, browsers: list[Browser]) -> None:
    srv = kfp_server(auth="dex", execute=False, dex_shape="authservice", kubeflow_version="1.8")
    b = browser(browsers, srv)
    target = "/pipeline/apis/v2beta1/pipelines?page_size=5"
    first = authservice_start(b, target, "/authservice/oidc/callback")
    state_cookie = set_cookies(first)["oidc_state_csrf"]
    assert "Path=/" in state_cookie
    at_dex = b.follow(first, 302, "/dex/auth?")
    wrong = dex_password_login(b, at_dex, password="bad", connector=None, login=USER,
                               callback="/authservice/oidc/callback")
    assert wrong.status_code == 401 and login_error(password_form(wrong)[1]) == "Invalid Email Address and password."
    ok = b.post(b.url, {"login": USER, "password": PASSWORD})
    assert ok.status_code == 303, "Dex 2.36: no approval hop"
    callback = b.follow(ok, 303, "/authservice/oidc/callback?")
    assert callback.status_code == 302 and callback.headers["location"] == target
    assert "authservice_session" in set_cookies(callback)
    listed = b.get(target)
    assert listed.status_code == 200 and listed.headers["content-type"].startswith("application/json")
    # the session value replays as a Bearer header (oidc-authservice e236439)
    session = b.http.cookies.get("authservice_session") or ""
    with httpx.Client(base_url=srv.url, timeout=10.0) as http:
        assert http.get(HEALTHZ, headers={"authorization": f"Bearer {session}"}).status_code == 200
        assert http.get(HEALTHZ).status_code == 302


def test_authservice_callback_needs_the_state_cookie(kfp_server: Any, browsers: list[Browser]) -> None:
    srv = kfp_server(auth="dex", execute=False, dex_shape="authservice", kubeflow_version="1.7")
    b = browser(browsers, srv)
    first = authservice_start(b, "/", "/authservice/oidc/callback")
    posted = dex_password_login(b, b.follow(first, 302, "/dex/auth?"), password=PASSWORD, connector=None,
                                login=USER, callback="/authservice/oidc/callback")
    # Dex 2.31 (KF 1.7) still passes through /dex/approval, which skips the screen
    callback_url = posted.headers["location"]
    assert callback_url.startswith("/dex/approval?req=") and "hmac" not in callback_url
    code = b.get(callback_url)
    assert code.status_code == 303
    b.http.cookies.delete("oidc_state_csrf")
    answer = b.get(code.headers["location"])
    assert answer.status_code == 400 and answer.text.startswith("CSRF check failed.")
    with httpx.Client(base_url=srv.url, timeout=10.0) as http:
        assert http.get("/authservice/oidc/callback").text == "Missing url parameter: state"


def test_authservice_old_dex_urls_kf_1_5(kfp_server: Any, browsers: list[Browser]) -> None:
    srv = kfp_server(auth="dex", execute=False, dex_shape="authservice", kubeflow_version="1.5",
                     dex_url_shape="old")
    b = browser(browsers, srv)
    first = authservice_start(b, "/pipeline/", "/login/oidc")
    assert "oidc_state_csrf" not in set_cookies(first), "28c59ef keeps the state server-side"
    at_dex = b.follow(first, 302, "/dex/auth?")
    wrong = dex_password_login(b, at_dex, password="bad", connector=None, login=USER, callback="/login/oidc",
                               old=True)
    assert wrong.status_code == 200, "Dex < 2.36 answers a wrong password with 200"
    assert login_error(password_form(wrong)[1]) == "Invalid Email Address and password."
    assert urlsplit(b.url).path == "/dex/auth/local" and set(query(b.url)) == {"req"}
    ok = b.post(b.url, {"login": USER, "password": PASSWORD})
    approval = b.follow(ok, 303, "/dex/approval?req=")
    assert set(query(b.url)) == {"req"}
    callback = b.follow(approval, 303, "/login/oidc?")
    assert callback.status_code == 302 and callback.headers["location"] == "/pipeline/"
    assert "authservice_session" in set_cookies(callback)
    assert b.get(HEALTHZ).status_code == 200
    # the session value replays as X-Auth-Token (oidc-authservice 28c59ef)
    session = b.http.cookies.get("authservice_session") or ""
    with httpx.Client(base_url=srv.url, timeout=10.0) as http:
        assert http.get(HEALTHZ, headers={"x-auth-token": session}).status_code == 200
        # an unknown req is old Dex's "Login session expired."
        expired = http.get("/dex/auth/local", params={"req": "nope"})
        assert expired.status_code == 400 and "Login session expired." in expired.text


def test_authservice_connector_selection_old_and_new(kfp_server: Any, browsers: list[Browser]) -> None:
    for shape, version in (("old", "1.5"), ("new", "1.7")):
        srv = kfp_server(auth="dex", execute=False, dex_shape="authservice", kubeflow_version=version,
                         dex_url_shape=shape, connectors=("local", "ldap"))
        callback = "/login/oidc" if version == "1.5" else "/authservice/oidc/callback"
        b = browser(browsers, srv)
        first = authservice_start(b, "/pipeline/", callback)
        at_dex = b.get(first.headers["location"])
        posted = dex_password_login(b, at_dex, password=PASSWORD, connector="local", login=USER, callback=callback,
                                    old=shape == "old")
        back = attr(one(soup(b.get(b.url)), "a", string="Select another login method."), "href")
        assert back == ("javascript:history.back()" if shape == "old" else query(b.url)["back"])
        done = b.follow(b.follow(posted, 303, "/dex/approval?"), 303, callback + "?")
        assert done.status_code == 302 and "authservice_session" in set_cookies(done)
        assert b.get(HEALTHZ).status_code == 200


# --------------------------------------------------------------------------------------- sessions and users
def test_session_expires_after_ttl(kfp_server: Any, browsers: list[Browser]) -> None:
    srv = kfp_server(auth="dex", execute=False, session_ttl=0.6)
    b = browser(browsers, srv)
    b.follow(oauth2_login(b), 303, "/oauth2/callback?")
    assert b.get(HEALTHZ).status_code == 200
    time.sleep(0.8)
    assert "oauth2_proxy_kubeflow" in b.cookie_names(), "the browser still sends the cookie"
    assert json_401(b.get(HEALTHZ))
    page = b.get("/pipeline/")
    assert page.status_code == 403 and "Max-Age=0" in set_cookies(page)["oauth2_proxy_kubeflow"]
    assert "oauth2_proxy_kubeflow" not in b.cookie_names(), "the sign-in page clears the stale session cookie"
    b.follow(oauth2_login(b), 303, "/oauth2/callback?")
    assert b.get(HEALTHZ).status_code == 200, "a new login gives a new session"


def test_expire_sessions_hook_and_fault_endpoint(kfp_server: Any, browsers: list[Browser]) -> None:
    srv = kfp_server(auth="dex", execute=False, dex_shape="authservice", kubeflow_version="1.8", faults=True)

    def logged_in() -> Browser:
        b = browser(browsers, srv)
        first = authservice_start(b, "/pipeline/", "/authservice/oidc/callback")
        posted = dex_password_login(b, b.follow(first, 302, "/dex/auth?"), password=PASSWORD, connector=None,
                                    login=USER, callback="/authservice/oidc/callback")
        b.follow(posted, 303, "/authservice/oidc/callback?")
        assert b.get(HEALTHZ).status_code == 200
        return b

    b = logged_in()
    srv.expire_sessions()
    assert b.get(HEALTHZ).status_code == 302
    b = logged_in()
    with httpx.Client(base_url=srv.url, timeout=10.0) as http:  # the endpoint needs the API's authentication
        assert http.post("/_kfp_ci/faults", json={"action": "expire_sessions"}).status_code in (302, 401)
    assert b.get(HEALTHZ).status_code == 200
    assert b.http.post("/_kfp_ci/faults", json={"action": "expire_sessions"}).status_code < 300
    again = b.get(HEALTHZ)
    assert again.status_code == 302 and again.headers["location"].startswith("/dex/auth?")


def test_logged_in_user_is_the_kubeflow_userid(kfp_server: Any, browsers: list[Browser]) -> None:
    srv = kfp_server(auth="dex", execute=False, multi_user=True, profiles=PROFILES,
                     users={USER: PASSWORD, OTHER: "other-pass-1"})
    b = browser(browsers, srv)
    b.follow(oauth2_login(b), 303, "/oauth2/callback?")
    spoof = {"kubeflow-userid": OTHER}  # what Istio strips from a client
    own = b.get("/pipeline/apis/v2beta1/experiments", params={"namespace": "kubeflow-user-example-com"},
                headers=spoof)
    assert own.status_code == 200, own.text
    other = b.get("/pipeline/apis/v2beta1/experiments", params={"namespace": "team-other"}, headers=spoof)
    assert other.status_code == 403 and "RBAC: access denied" in other.text
    created = b.http.post("/pipeline/apis/v2beta1/experiments",
                          json={"display_name": "mine", "namespace": "kubeflow-user-example-com"})
    assert created.status_code == 200, created.text
    # the other user, logged in on their own, sees their namespace and not the first one's
    o = browser(browsers, srv)
    o.follow(oauth2_login(o, login=OTHER, password="other-pass-1"), 303, "/oauth2/callback?")
    assert o.get("/pipeline/apis/v2beta1/experiments", params={"namespace": "team-other"}).status_code == 200
    assert o.get("/pipeline/apis/v2beta1/experiments",
                 params={"namespace": "kubeflow-user-example-com"}).status_code == 403


# ------------------------------------------------------------------------------------ the real kfp.Client as peer
def cookie_header(b: Browser) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in b.http.cookies.jar)


def test_real_kfp_client_trap_then_cookies_and_tokens(kfp_server: Any, browsers: list[Browser]) -> None:
    import kfp

    # authservice: without a session kfp.Client deserializes Dex's 200 HTML into a model full of None
    auth = kfp_server(auth="dex", execute=False, dex_shape="authservice", kubeflow_version="1.8")
    fooled = kfp.Client(host=auth.url + "/pipeline").list_pipelines()
    assert fooled.pipelines is None and fooled.total_size is None
    b = browser(browsers, auth)
    first = authservice_start(b, "/pipeline/", "/authservice/oidc/callback")
    posted = dex_password_login(b, b.follow(first, 302, "/dex/auth?"), password=PASSWORD, connector=None,
                                login=USER, callback="/authservice/oidc/callback")
    b.follow(posted, 303, "/authservice/oidc/callback?")
    client = kfp.Client(host=auth.url + "/pipeline", cookies=cookie_header(b))
    assert client.create_experiment("login-emulation").display_name == "login-emulation"
    assert client.list_experiments().total_size == 1

    # oauth2-proxy with split cookies: kfp sends every part in its Cookie header
    proxy = kfp_server(auth="dex", execute=False, connectors=("local", "ldap"))
    b = browser(browsers, proxy)
    b.follow(oauth2_login(b, connector="ldap", login="user"), 303, "/oauth2/callback?")
    assert "oauth2_proxy_kubeflow_1" in b.cookie_names()
    assert kfp.Client(host=proxy.url + "/pipeline", cookies=cookie_header(b)).get_kfp_healthz().multi_user is False

    # token mode: existing_token is the Bearer
    tok = kfp_server(auth="token", execute=False, tokens={"tok-ci-77": USER})
    assert kfp.Client(host=tok.url, existing_token="tok-ci-77").list_pipelines().total_size in (0, None)


# --------------------------------------------------------------------------------------------- serve flag
def test_serve_flag_for_the_wrong_password_status(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from click.testing import CliRunner

    from kfp_ci.cli import main
    from kfp_ci.local import _command

    seen: list[Any] = []

    class Recorder:
        def __init__(self, options: Any, host: str, port: int) -> None:
            seen.append(options)
            self.url = f"http://{host}:{port}"

        def bind(self) -> None:
            pass

        def serve_forever(self) -> None:
            pass

    monkeypatch.setattr(_command, "LocalServer", Recorder)
    assert "--dex-wrong-password-status" in CliRunner().invoke(main, ["serve", "--help"]).output
    base = ["serve", "--auth", "dex", "--data-dir", str(tmp_path), "--port", "0"]
    for extra, expected in (([], None), (["--dex-wrong-password-status", "200"], 200)):
        result = CliRunner().invoke(main, [*base, *extra])
        assert result.exit_code == 0, result.output
        assert seen[-1].auth == "dex" and seen[-1].dex_wrong_password_status == expected
    bad = CliRunner().invoke(main, [*base, "--dex-wrong-password-status", "302"])
    assert bad.exit_code == 2 and "302" in bad.output
