"""The options of one embedded server (``ServerOptions``) and the default user and profile."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kfp_ci.errors import UsageError

DEFAULT_USERS = {"user@example.com": "12341234"}
DEFAULT_PROFILES = {"user@example.com": ("kubeflow-user-example-com",)}


@dataclass
class ServerOptions:
    """Everything that shapes one server. Field names are the ``kfp_server`` fixture's keywords."""

    data_dir: Path = Path(".kfp-ci/local")
    compat: str = "2.17"
    multi_user: bool = False
    auth: str = "none"
    dex_shape: str = "oauth2-proxy"
    kubeflow_version: str = "1.9.1"
    dex_url_shape: str = "new"
    connectors: tuple[str, ...] = ("local",)
    users: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_USERS))
    tokens: dict[str, str] = field(default_factory=dict)
    session_ttl: float = 86400.0
    dex_wrong_password_status: int | None = None  # None: 401 on Dex >= 2.36 (Kubeflow >= 1.8), 200 before
    execute: bool = True
    run_delay: float = 0.5
    faults: bool = False
    profiles: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_PROFILES))
    access_log: bool = False

    def __post_init__(self) -> None:
        # absolute now: run workers start in their run's folder, where a relative path would point elsewhere
        self.data_dir = Path(self.data_dir).expanduser().absolute()
        if self.compat not in ("2.17", "2.5", "1.8"):
            raise UsageError(f"--compat must be 2.17, 2.5 or 1.8, not {self.compat!r}")
        if self.auth not in ("none", "token", "dex"):
            raise UsageError(f"--auth must be none, token or dex, not {self.auth!r}")
        self.connectors = tuple(self.connectors)
        self.profiles = {user: tuple(ns) for user, ns in self.profiles.items()}
