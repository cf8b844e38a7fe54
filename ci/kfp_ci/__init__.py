"""kfp-ci: CI/CD/CT for Kubeflow Pipelines.

One subpackage per concern: :mod:`kfp_ci.compile`, :mod:`kfp_ci.client`, :mod:`kfp_ci.auth`,
:mod:`kfp_ci.gate`, :mod:`kfp_ci.deploy` and :mod:`kfp_ci.local` (the embedded server); each ``__init__`` names
its public API, and modules named ``_*`` (at any level) are private. This module exports the error hierarchy
and, on first use, the :class:`~kfp_ci.client.Client`, so ``import kfp_ci`` stays cheap.
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
