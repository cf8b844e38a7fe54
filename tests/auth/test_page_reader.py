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


def test_entities_are_decoded_in_attributes_and_text() -> None:
    page = parse_page('<form action="/login?a=1&amp;b=&quot;2&quot;">'
                      '<input type="hidden" name="n" value="&lt;&#39;x&#x27;&gt;"></form>'
                      "<p>caf&eacute; &amp;&nbsp;co &#8212; ok</p>")
    assert page.forms[0].action == '/login?a=1&b="2"' and page.forms[0].values() == {"n": "<'x'>"}
    assert page.message() == "café & co — ok"  # &nbsp; is whitespace, squashed like the rest


def test_only_character_data_is_text() -> None:
    page = parse_page("<!DOCTYPE html><html><head><title>T</title><style>p { color: red }</style></head><body>"
                      "<!-- a comment --><noscript><p id='ns'>enable JavaScript</p></noscript>"
                      "<template><p>later</p></template><script>var s = '<p>no</p>';</script>"
                      "<div class='dex-error-box'> one\n\t two </div><p>shown</p></body></html>")
    assert page.text == "T one two shown"
    assert page.by_class("dex-error-box") == "one two" and page.by_id("ns") == ""  # the element, without its text
    assert page.paragraphs == ["", "", "shown"] and page.message() == "shown"


def test_void_elements_and_valueless_attributes() -> None:
    page = parse_page('<form method="POST"><input id="login" name="login" required>'
                      '<input name="remember" type="checkbox" checked><input name="t" type="TEXT"><br class="gap">'
                      '</form><p class="gap">after</p>')
    (form,) = page.forms
    assert form.method == "post" and form.inputs[0] == {"id": "login", "name": "login", "required": ""}
    assert form.values() == {"login": "", "t": ""}  # checkbox left out; type compared case-insensitively
    assert page.by_id("login") is None and page.by_class("gap") == "after"  # <input>, <br> hold no text


def test_class_lists_and_first_element_in_document_order() -> None:
    page = parse_page('<div class="theme-panel  outer"><h2 class="theme-heading">First</h2>'
                      '<h2 class="theme-heading" id="x">Second</h2><span id="x">third</span></div>')
    assert page.by_class("outer") == page.by_class("theme-panel") == "First Second third"
    assert page.by_class("theme-heading") == "First" and page.by_id("x") == "Second"


def test_nested_forms_keep_their_own_inputs() -> None:
    page = parse_page('<form action="/outer"><input name="a" type="hidden" value="1">'
                      '<form action="/inner"><input name="b" type="hidden" value="2"></form>'
                      '<input name="c" type="hidden" value="3"></form><input name="d" value="4">')
    assert [(f.action, f.values()) for f in page.forms] == [("/outer", {"a": "1", "c": "3"}), ("/inner", {"b": "2"})]


def test_malformed_markup_never_raises() -> None:
    page = parse_page('<form action="/x"<input name=a value=1><a href=/dex/auth/local>Log in with <b>Email</a>'
                      "</b></i></form></form><p>unclosed <a href='/dex/auth/ldap'>LDAP")
    assert page.links == [("/dex/auth/local", "Log in with Email"), ("/dex/auth/ldap", "LDAP")]
    assert page.message() == "unclosed LDAP"
    for broken in ("", "<", "</", "<a href", "<<<>>>", "<!--", "<![CDATA[x]]>", "&amp", "<p>" * 500, "\x00<p>\x00"):
        parse_page(broken)
    assert parse_page("").message() == "" and parse_page("").forms == []


def test_pages_of_the_emulated_kubeflow() -> None:
    from kfp_ci.local._login_pages import approval_page, connector_page, error_page, password_page

    page = parse_page(password_page("/dex/auth/local/login?back=&state=s", "Email Address", back="/dex/auth?s=1",
                                     last="user@example.com", error="Invalid Email Address and password."))
    (form,) = page.forms
    assert form.method == "post" and form.action == "/dex/auth/local/login?back=&state=s"
    assert form.values() == {"login": "user@example.com"} and form.has_input("password")
    assert page.by_id("login-error") == "Invalid Email Address and password."
    assert page.links == [("/dex/auth?s=1", "Select another login method.")]
    links = parse_page(connector_page({"local": "/dex/auth/local?s=1", "ldap": "/dex/auth/ldap?s=1"})).links
    assert sorted(links) == [("/dex/auth/ldap?s=1", "Log in with LDAP"), ("/dex/auth/local?s=1", "Log in with Email")]
    approve, cancel = parse_page(approval_page("r<1>")).forms
    assert approve.has_input("approval", "approve") and approve.values() == {"req": "r<1>", "approval": "approve"}
    assert cancel.has_input("approval", "rejected")
    error = parse_page(error_page(403, "Forbidden", "Login Failed: Unable to find a valid CSRF token"))
    assert error.by_class("status-code") == "403"
    assert error.message() == "Login Failed: Unable to find a valid CSRF token"


def test_beautifulsoup_is_imported_by_the_first_page_only() -> None:
    import subprocess
    import sys

    code = ("import sys, kfp_ci.auth._page as p; before = 'bs4' in sys.modules; p.parse_page('<p>x</p>'); "
            "print(before, 'bs4' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]
