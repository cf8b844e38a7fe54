"""kfp-ci: CI/CD/CT for Kubeflow Pipelines.

The public API is what this module exports; everything in ``kfp_ci._*`` modules is private.
Heavy parts (the client, the compiler driver, the embedded server) are imported on first use, so
``import kfp_ci`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kfp_ci._version import __version__
from kfp_ci.errors import (
    ApiError,
    AuthError,
    CompileError,
    ConfigError,
    Conflict,
    ConnectError,
    GateFailed,
    KfpCiError,
    LoginError,
    NotFound,
    NotKfpError,
    PermissionDenied,
    RunFailed,
    ServerError,
    TimeoutExpired,
    Unauthenticated,
    UsageError,
)

if TYPE_CHECKING:
    from kfp_ci.client import Client

__all__ = [
    "ApiError",
    "AuthError",
    "Client",
    "CompileError",
    "ConfigError",
    "Conflict",
    "ConnectError",
    "GateFailed",
    "KfpCiError",
    "LoginError",
    "NotFound",
    "NotKfpError",
    "PermissionDenied",
    "RunFailed",
    "ServerError",
    "TimeoutExpired",
    "Unauthenticated",
    "UsageError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    if name == "Client":
        from kfp_ci.client import Client

        return Client
    raise AttributeError(f"module 'kfp_ci' has no attribute {name!r}")
