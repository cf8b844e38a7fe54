"""One exception hierarchy for the whole package.

Every error carries the one-line message a user sees (``str(err)``) and the exit code the CLI ends with.
Messages never contain secrets: anything registered with :mod:`kfp_ci._secrets` is masked when the
message is built.

Exit codes (documented in the README):

====  =====================================================================
0     success
1     the operation failed: a pipeline did not compile, output is stale, a run did not succeed, a gate failed
2     usage or configuration error: fix the command line, the environment or ``[tool.kfp-ci]``
3     authentication failed: credentials, session, login flow
4     the server or the network failed: KFP answered an error, could not be reached, or is not KFP
5     timed out waiting
====  =====================================================================
"""

from __future__ import annotations

from kfp_ci._secrets import redact

__all__ = [
    "ApiError",
    "AuthError",
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
]


class KfpCiError(Exception):
    """Base of every error kfp-ci raises on purpose. ``str(err)`` is the user-facing line."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        message = redact(" ".join(str(message).split("\n")).strip())
        self.message = message
        self.hint = redact(hint) if hint else None
        super().__init__(message)

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class UsageError(KfpCiError):
    """Bad input: a flag, an argument, a file the user named."""

    exit_code = 2


class ConfigError(UsageError):
    """Bad configuration: environment variables or the ``[tool.kfp-ci]`` table."""


class CompileError(KfpCiError):
    """A pipeline failed to compile, or a committed compiled file is stale."""

    exit_code = 1


class RunFailed(KfpCiError):
    """A run ended in a state other than SUCCEEDED."""

    exit_code = 1


class GateFailed(KfpCiError):
    """A quality gate found a metric below its requirement or regressed against its baseline."""

    exit_code = 1


class TimeoutExpired(KfpCiError):
    """Waiting for something took longer than allowed."""

    exit_code = 5


class AuthError(KfpCiError):
    """Authentication failed or the session is missing or expired."""

    exit_code = 3


class LoginError(AuthError):
    """The dashboard login flow failed; the message names the cause."""


class ServerError(KfpCiError):
    """The KFP server, or the network in front of it, failed."""

    exit_code = 4


class ConnectError(ServerError):
    """The host could not be reached (DNS, refused connection, TLS)."""


class NotKfpError(ServerError):
    """The host answered, but not as the KFP API does (HTML, a dashboard, a non-JSON body)."""


class ApiError(ServerError):
    """The KFP API answered with an error status. ``status`` is the HTTP status."""

    def __init__(self, status: int, message: str, *, hint: str | None = None) -> None:
        self.status = status
        super().__init__(message, hint=hint)


class NotFound(ApiError):
    """404 from the API."""


class Conflict(ApiError):
    """409 (or a pre-2.1 500 "already exist") from the API."""


class PermissionDenied(ApiError):
    """403 from the API, e.g. ``RBAC: access denied`` from the mesh."""

    exit_code = 3


class Unauthenticated(ApiError):
    """401 from the API."""

    exit_code = 3
