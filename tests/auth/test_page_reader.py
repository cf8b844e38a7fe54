"""The login-page reader (``kfp_ci.auth._page``) on the page shapes of ../shared/reference/kubeflow-login.md §5."""

from __future__ import annotations

from kfp_ci.auth._page import parse_page

OAUTH2_PROXY_SIGN_IN = """<!DOCTYPE html><html lang="en" charset="utf-8"><head><title>Sign In</title>
<script>window.onload = function() { var i = document.getElementsByName("rd")[0]; i.value += window.location.hash; }
</script><style>.x { content: "<form action='/nope'>" }</style></head><body>
<section class="section"><div class="box block">
<form method="GET" action="/oauth2/start"><input type="hidden" name="rd" value="/pipeline/?ns=a&amp;b=c">
<button type="submit" class="button block is-primary">Sign in with Dex</button></form>
<form method="POST" action="/oauth2/sign_in"><input type="text" name="username"><input type="password" name="password">
</form></div></section></body></html>"""

CONNECTORS = """<div class="theme-panel"><h2 class="theme-heading">Log in to dex</h2><div>
<div class="theme-form-row"><a href="/dex/auth/ldap?client_id=k&amp;state=s" target="_self">
<button class="dex-btn theme-btn-provider"><span class="dex-btn-icon dex-btn-icon--ldap"></span>
<span class="dex-btn-text">Log in with LDAP</span></button></a></div>
<div class="theme-form-row"><a href="/dex/auth/local?client_id=k&amp;state=s" target="_self">
<button class="dex-btn theme-btn-provider"><span class="dex-btn-text">Log in with Email</span></button></a></div>
</div></div>"""

PASSWORD_FAILED = """<div class="theme-panel"><h2 class="theme-heading">Log in to Your Account</h2>
<form method="post" action="/dex/auth/local/login?back=&amp;state=abc">
<div class="theme-form-row"><div class="theme-form-label"><label for="userid">Email Address</label></div>
<input tabindex="1" required id="login" name="login" type="text" class="theme-form-input" placeholder="email address"
 value="user@example.com" autofocus/></div>
<div class="theme-form-row"><input tabindex="2" required id="password" name="password" type="password"></div>
<div id="login-error" class="dex-error-box">
  Invalid Email Address and password.
</div>
<button tabindex="3" id="submit-login" type="submit" class="dex-btn theme-btn--primary">Login</button>
</form></div>"""

APPROVAL = """<h2 class="theme-heading">Grant Access</h2><p>Dex Login Application would like to:</p>
<ul class="dex-list"><li>View basic profile information</li><li>Have offline access</li></ul>
<form method="post"><input type="hidden" name="req" value="r1"/><input type="hidden" name="approval" value="approve">
<button type="submit" class="dex-btn theme-btn--success">Grant Access</button></form>
<form method="post"><input type="hidden" name="req" value="r1"/><input type="hidden" name="approval" value="rejected">
<button type="submit" class="dex-btn theme-btn-provider">Cancel</button></form>"""

ERROR_PAGE = """<div class="theme-panel"><h2 class="theme-heading">Bad Request</h2>
<p>Login session expired.</p></div>"""


def test_oauth2_proxy_sign_in_page() -> None:
    page = parse_page(OAUTH2_PROXY_SIGN_IN)
    assert [f.action for f in page.forms] == ["/oauth2/start", "/oauth2/sign_in"]  # not the one inside <style>
    start, htpasswd = page.forms
    assert start.method == "get" and start.values() == {"rd": "/pipeline/?ns=a&b=c"}  # entities decoded
    assert htpasswd.has_input("password") and not htpasswd.has_input("login")
    assert "window.onload" not in page.text and page.text.startswith("Sign In Sign in with Dex")


def test_connector_links_keep_their_text() -> None:
    page = parse_page(CONNECTORS)
    assert page.links == [("/dex/auth/ldap?client_id=k&state=s", "Log in with LDAP"),
                          ("/dex/auth/local?client_id=k&state=s", "Log in with Email")]
    assert page.by_class("theme-heading") == "Log in to dex" and page.forms == []


def test_password_page_with_the_error_box() -> None:
    page = parse_page(PASSWORD_FAILED)
    (form,) = page.forms
    assert form.action == "/dex/auth/local/login?back=&state=abc" and form.method == "post"
    assert form.has_input("login") and form.has_input("password")
    assert form.values() == {"login": "user@example.com"}  # the password field is never echoed back
    assert page.by_id("login-error") == page.by_class("dex-error-box") == "Invalid Email Address and password."
    assert page.by_id("nope") is None


def test_approval_forms_without_action() -> None:
    page = parse_page(APPROVAL)
    assert [f.action for f in page.forms] == ["", ""]
    assert [f.has_input("approval", "approve") for f in page.forms] == [True, False]
    assert page.forms[0].values() == {"req": "r1", "approval": "approve"}
    assert page.message() == "Dex Login Application would like to:"


def test_error_page_and_sloppy_markup() -> None:
    page = parse_page(ERROR_PAGE)
    assert page.by_class("theme-heading") == "Bad Request" and page.message() == "Login session expired."
    sloppy = parse_page("<p>first<p>second</div><b>bold <i>both</b> tail")  # unclosed and stray tags
    assert sloppy.text == "first second bold both tail"
    assert parse_page("plain text, no tags").message() == "plain text, no tags"
