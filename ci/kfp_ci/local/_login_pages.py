"""The HTML pages of the login emulation: Dex's connector, password, Grant Access and error pages, and
oauth2-proxy's sign-in and error pages (markup as the real components render it)."""

from __future__ import annotations

import html

CONNECTOR_NAMES = {"local": "Email", "ldap": "LDAP"}


def dex_error_page(status: int, message: str) -> str:
    """Dex's error page: the status text and the message."""
    return dex_page("dex", f'<h2 class="theme-heading">{status_text(status)}</h2>\n'
                    f"<p>{html.escape(message)}</p>")


def status_text(status: int) -> str:
    return {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 500: "Internal Server Error"}.get(status, "Error")  # noqa: E501


def dex_page(title: str, body: str) -> str:
    return ("<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{title}</title>\n<link href=\"/dex/static/main.css\" rel=\"stylesheet\">\n</head>\n<body class=\"theme-body\">\n"  # noqa: E501
            "<div class=\"theme-navbar\"><div class=\"theme-navbar__logo-wrap\">"
            "<img class=\"theme-navbar__logo\" src=\"/dex/theme/logo.png\"></div></div>\n"
            f"<div class=\"dex-container\">\n<div class=\"theme-panel\">\n{body}\n</div>\n</div>\n</body>\n</html>\n")


def connector_page(links: dict[str, str]) -> str:
    rows = []
    for cid, href in sorted(links.items(), key=lambda kv: CONNECTOR_NAMES.get(kv[0], kv[0])):
        name = CONNECTOR_NAMES.get(cid, cid)
        rows.append(f'<div class="theme-form-row">\n<a href="{html.escape(href)}" target="_self">\n'
                    f'<button class="dex-btn theme-btn-provider">\n'
                    f'<span class="dex-btn-icon dex-btn-icon--{html.escape(cid)}"></span>\n'
                    f'<span class="dex-btn-text">Log in with {html.escape(name)}</span>\n</button>\n</a>\n</div>')
    return dex_page("dex", '<h2 class="theme-heading">Log in to dex</h2>\n<div>\n' + "\n".join(rows) + "\n</div>")


def password_page(post_url: str, prompt: str, *, back: str | None, last: str = "", error: str = "") -> str:
    value = f' value="{html.escape(last)}"' if last else ""
    parts = ['<h2 class="theme-heading">Log in to Your Account</h2>',
             f'<form method="post" action="{html.escape(post_url)}">',
             '<div class="theme-form-row">',
             f'<div class="theme-form-label"><label for="login">{html.escape(prompt)}</label></div>',
             f'<input tabindex="1" required id="login" name="login" type="text" class="theme-form-input" '
             f'placeholder="{html.escape(prompt.lower())}"{value} autofocus>',
             "</div>", '<div class="theme-form-row">',
             '<div class="theme-form-label"><label for="password">Password</label></div>',
             '<input tabindex="2" required id="password" name="password" type="password" class="theme-form-input" '
             'placeholder="password">', "</div>"]
    if error:
        parts.append(f'<div id="login-error" class="dex-error-box">{html.escape(error)}</div>')
    parts.append('<button tabindex="3" id="submit-login" type="submit" class="dex-btn theme-btn--primary">Login</button>')  # noqa: E501
    parts.append("</form>")
    if back is not None:
        parts.append(f'<div class="theme-link-back"><a class="dex-subtle-text" href="{html.escape(back)}">'
                     "Select another login method.</a></div>")
    return dex_page("dex", "\n".join(parts))


def approval_page(rid: str) -> str:
    def form(value: str, label: str, cls: str) -> str:
        return (f'<form method="post">\n<input type="hidden" name="req" value="{html.escape(rid)}"/>\n'
                f'<input type="hidden" name="approval" value="{value}"/>\n'
                f'<button type="submit" class="dex-btn {cls}"><span class="dex-btn-text">{label}</span></button>\n'
                "</form>")
    body = ('<h2 class="theme-heading">Grant Access</h2>\n<hr class="dex-separator">\n<div>\n'
            '<div class="dex-subtle-text">Dex Login Application would like to:</div>\n<div class="dex-subtle-text">\n'
            '<ul class="dex-list">\n<li>View basic profile information</li>\n<li>View your email address</li>\n'
            '<li>View your groups</li>\n<li>Have offline access</li>\n</ul>\n</div>\n</div>\n<hr class="dex-separator">\n'  # noqa: E501
            '<div>\n<div class="theme-form-row">\n' + form("approve", "Grant Access", "theme-btn--success")
            + '\n</div>\n<div class="theme-form-row">\n' + form("rejected", "Cancel", "theme-btn-provider")
            + "\n</div>\n</div>")
    return dex_page("dex", body)


def sign_in_page(rd: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\" charset=\"utf-8\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<title>Sign In</title>\n</head>\n<body>\n<section class=\"section\">\n<div class=\"box block\">\n"
            "<img class=\"block logo\" src=\"/custom-theme/kubeflow-logo.svg\" alt=\"Kubeflow\">\n"
            "<form class=\"block\" method=\"GET\" action=\"/oauth2/start\">\n"
            f"<input type=\"hidden\" name=\"rd\" value=\"{html.escape(rd)}\">\n"
            "<button type=\"submit\" class=\"button block is-primary\">Sign in with Dex</button>\n</form>\n"
            "</div>\n</section>\n<script>\nif (window.location.hash) {\n"
            "  (function() { var inputs = document.getElementsByName('rd');\n"
            "    for (var i = 0; i < inputs.length; i++) { inputs[i].value += window.location.hash; } })();\n}\n"
            "</script>\n<footer>-</footer>\n</body>\n</html>\n")


def error_page(status: int, title: str, message: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\" charset=\"utf-8\">\n<head>\n"
            f"<title>{status} {html.escape(title)}</title>\n</head>\n<body>\n<section class=\"section\">\n"
            f"<div class=\"box block\">\n<div class=\"status-code\">{status}</div>\n<h1>{html.escape(title)}</h1>\n"
            f"<p>{html.escape(message)}</p>\n</div>\n</section>\n</body>\n</html>\n")
