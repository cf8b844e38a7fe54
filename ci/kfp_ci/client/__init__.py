"""A KFP REST client on httpx, for CI: ``from kfp_ci.client import Client``.

It speaks v2beta1 (KFP 2.x) and v1beta1 (KFP 1.x), detected from one healthz call, with kfp.Client's method and
argument names where they overlap. Unlike kfp.Client it fails loudly: an HTML login page, the Kubeflow dashboard
or any non-JSON answer raises an error that says what to fix. Idempotent calls are retried with backoff; creates
and uploads are never re-sent blindly (after an ambiguous failure the object is looked up by name first).

    from kfp_ci.client import Client, BearerToken

    with Client("https://kubeflow.example.com/pipeline", namespace="team-a", auth=BearerToken(token)) as client:
        pid = client.get_pipeline_id("train")
        version = client.upload_pipeline_version("train.yaml", "git-abc1234", pipeline_id=pid)

Inside: :mod:`._client` (the Client), :mod:`._http` (hosts, httpx set-up, auths, response sniffing, error
bodies), :mod:`._dialect` (request shapes of v2beta1 and v1beta1), :mod:`._models` (typed results of both
generations), :mod:`._retry` (backoff policy with a test mode).
"""

from __future__ import annotations

from kfp_ci.client._client import Client
from kfp_ci.client._http import (
    BearerToken,
    CookieAuth,
    SessionCookie,
    TokenFile,
    api_error,
    build_http_client,
    html_error,
    is_html,
    looks_like_login,
    normalize_host,
)
from kfp_ci.client._models import (
    TERMINAL_STATES,
    Experiment,
    Page,
    Pipeline,
    PipelineVersion,
    RecurringRun,
    Run,
    ServerInfo,
    Task,
)
from kfp_ci.client._retry import RetryPolicy, set_testing

__all__ = [
    "TERMINAL_STATES",
    "BearerToken",
    "Client",
    "CookieAuth",
    "Experiment",
    "Page",
    "Pipeline",
    "PipelineVersion",
    "RecurringRun",
    "RetryPolicy",
    "Run",
    "ServerInfo",
    "SessionCookie",
    "Task",
    "TokenFile",
    "api_error",
    "build_http_client",
    "html_error",
    "is_html",
    "looks_like_login",
    "normalize_host",
    "set_testing",
]
