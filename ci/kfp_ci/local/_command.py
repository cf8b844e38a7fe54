"""``kfp-ci serve``: server options from the command-line flags, then serve until Ctrl-C."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kfp_ci import _console, _secrets
from kfp_ci.errors import UsageError
from kfp_ci.local._options import DEFAULT_USERS, ServerOptions
from kfp_ci.local._server import LocalServer, has_module

__all__ = ["require_local_extra", "serve_command"]


def _read_pairs(path: Path | None, what: str) -> dict[str, str]:
    if path is None:
        return {}
    pairs: dict[str, str] = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if what == "users" and not sep:
            raise UsageError(f"{path}:{number}: expected email:password")
        pairs[key.strip()] = value.strip()
    return pairs


def _is_loopback(host: str) -> bool:
    """Whether ``host`` (a bind address) only accepts connections from this machine."""
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def require_local_extra(command: str, extras: str = "local") -> None:
    """One line naming the missing package when the server's dependencies (the ``local`` extra) are not installed."""
    for module in ("starlette", "uvicorn", "croniter", "multipart"):
        if not has_module(module):
            raise UsageError(f"kfp-ci {command} needs the 'local' extra ({module} is missing)",
                             hint=f"pip install 'kfp-ci[{extras}]'")


def serve_command(**kwargs: Any) -> int:
    """``kfp-ci serve``: build options from the CLI flags and serve until Ctrl-C."""
    require_local_extra("serve")
    users = _read_pairs(kwargs.get("users_file"), "users") or dict(DEFAULT_USERS)
    raw_tokens = _read_pairs(kwargs.get("tokens_file"), "tokens")
    tokens = {tok: (user or "user@example.com") for tok, user in raw_tokens.items()}
    for secret in [*users.values(), *tokens]:
        _secrets.register(secret)
    options = ServerOptions(
        data_dir=Path(kwargs.get("data_dir") or ".kfp-ci/local"), compat=kwargs.get("compat", "2.17"),
        multi_user=bool(kwargs.get("multi_user")), auth=kwargs.get("auth_mode", "none"),
        dex_shape=kwargs.get("dex_shape", "oauth2-proxy"), kubeflow_version=kwargs.get("kubeflow_version", "1.9.1"),
        dex_url_shape=kwargs.get("dex_url_shape", "new"),
        connectors=tuple(c.strip() for c in str(kwargs.get("connectors") or "local").split(",") if c.strip()),
        users=users, tokens=tokens, session_ttl=float(kwargs.get("session_ttl") or 86400.0),
        dex_wrong_password_status=kwargs.get("dex_wrong_password_status"),
        execute=not kwargs.get("no_execute"), run_delay=float(kwargs.get("run_delay") or 0.0),
        faults=bool(kwargs.get("faults")), access_log=True,
    )
    host = kwargs.get("bind_host") or "127.0.0.1"
    server = LocalServer(options, host=host, port=int(kwargs.get("port", 8888)))
    server.bind()
    if options.auth == "none" and not _is_loopback(host):
        what = ("create runs that execute code on this machine" if options.execute
                else "read and change every pipeline and run")
        _console.warn(f"kfp-ci serve: --host {host} with --auth none: anyone who can reach port {server.port} can "
                      f"{what}; use --auth token or --auth dex, or --host 127.0.0.1")
    mode = "multi-user" if options.multi_user else "single-user"
    _console.info(f"kfp-ci serve: KFP {options.compat} API and page on {server.url} ({mode}, "
                  f"auth {options.auth}, {'executing' if options.execute else 'not executing'} runs, data in "
                  f"{options.data_dir}); Ctrl-C stops")
    server.serve_forever()
    _console.info("kfp-ci serve: stopped")
    return 0
