"""Authentication: none, bearer token, cookie, Dex login (oauth2-proxy or oidc-authservice), auto.

``client_from_settings(settings)`` is how every command gets its logged-in :class:`kfp_ci.client.Client`;
``login_command`` is ``kfp-ci login``. Modes live in ``_modes``, the Dex walker in ``_dex``, the re-login Auth
in ``_session``, the 0600 session cache in ``_cache``, the command in ``_command``.
"""

from __future__ import annotations

from kfp_ci.auth._command import login_command
from kfp_ci.auth._dex import Session, dex_login
from kfp_ci.auth._modes import build_auth, client_from_settings, effective_mode, login, resolve_mode
from kfp_ci.auth._session import DexSession

__all__ = ["DexSession", "Session", "build_auth", "client_from_settings", "dex_login", "effective_mode", "login",
           "login_command", "resolve_mode"]
