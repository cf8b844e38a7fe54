"""The ML Metadata gRPC-web reader: a KFP v2 run's metrics, read the way the KFP UI reads them.

The KFP v2 REST API has no metrics. The KFP UI reads them from ML Metadata through gRPC-web
(``POST /ml_metadata.MetadataStoreService/<Method>``, ``application/grpc-web+proto``), which Istio's
``metadata-grpc`` VirtualService (or the UI's own proxy) sends to the metadata-envoy. We take the same
route and calls: the run's ``system.PipelineRun`` context (named by the run id), its executions, its
artifacts and their events; scalar metrics are the numeric custom properties of ``system.Metrics``
artifacts. Message shapes and sources: ``docs/metrics.md``.

``KFP_CI_MLMD_URL`` overrides the base URL of that route (for instance a port-forward of
``metadata-envoy-service`` 9090); by default it is the KFP host without its ``/pipeline`` suffix.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from kfp_ci._protowire import (
    GRPC_WEB_CONTENT_TYPE,
    GrpcStatusError,
    ProtoError,
    Writer,
    fields,
    first,
    parse_grpc_web,
    to_double,
    to_signed,
)
from kfp_ci.errors import GateFailed, NotKfpError, ServerError
from kfp_ci.gate._metrics import MetricValue, RunMetrics

__all__ = ["METRICS_TYPE", "MLMD_SERVICE", "RUN_CONTEXT_TYPE", "MlmdClient", "mlmd_base_url", "mlmd_run_metrics"]

MLMD_SERVICE = "ml_metadata.MetadataStoreService"
RUN_CONTEXT_TYPE = "system.PipelineRun"
METRICS_TYPE = "system.Metrics"
_OUTPUT_EVENT = 4  # ml_metadata.Event.Type.OUTPUT
_SKIPPED_PROPERTIES = frozenset({"display_name", "store_session_info"})
_PAGE = 100


def _str(value: int | bytes | None) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else ""


def _int(value: int | bytes | None) -> int | None:
    return to_signed(value) if isinstance(value, int) else None


def decode_value(data: bytes) -> Any:
    """``ml_metadata.Value``: int_value 1, double_value 2, string_value 3, struct_value 4, bool_value 6."""
    msg = fields(data)
    if 2 in msg and isinstance(first(msg, 2), int):
        return to_double(first(msg, 2))  # type: ignore[arg-type]
    if 1 in msg:
        return _int(first(msg, 1))
    if 3 in msg:
        return _str(first(msg, 3))
    if 6 in msg:
        return bool(first(msg, 6))
    if 4 in msg:
        return {"struct": True}
    return None


def decode_properties(values: Iterable[int | bytes]) -> dict[str, Any]:
    """A ``map<string, Value>``: repeated entries ``{key = 1, value = 2}``."""
    out: dict[str, Any] = {}
    for entry in values:
        if isinstance(entry, bytes):
            msg = fields(entry)
            value = first(msg, 2)
            out[_str(first(msg, 1))] = decode_value(value) if isinstance(value, bytes) else None
    return out


@dataclass(frozen=True, slots=True)
class Node:
    """A Context, Execution or Artifact, with the fields the gate needs."""

    id: int
    type_id: int | None = None
    type: str = ""
    name: str = ""
    uri: str = ""
    custom_properties: Mapping[str, Any] = field(default_factory=dict)


def decode_context(data: bytes) -> Node:
    # Context: id 1, type_id 2, name 3, custom_properties 5, type 6
    msg = fields(data)
    return Node(_int(first(msg, 1)) or 0, _int(first(msg, 2)), _str(first(msg, 6)), _str(first(msg, 3)), "",
                decode_properties(msg.get(5, [])))


def decode_execution(data: bytes) -> Node:
    # Execution: id 1, type_id 2, last_known_state 3, custom_properties 5, name 6, type 7
    msg = fields(data)
    return Node(_int(first(msg, 1)) or 0, _int(first(msg, 2)), _str(first(msg, 7)), _str(first(msg, 6)), "",
                decode_properties(msg.get(5, [])))


def decode_artifact(data: bytes) -> Node:
    # Artifact: id 1, type_id 2, uri 3, custom_properties 5, name 7, type 8
    msg = fields(data)
    return Node(_int(first(msg, 1)) or 0, _int(first(msg, 2)), _str(first(msg, 8)), _str(first(msg, 7)),
                _str(first(msg, 3)), decode_properties(msg.get(5, [])))


@dataclass(frozen=True, slots=True)
class Event:
    artifact_id: int
    execution_id: int
    type: int
    name: str


def decode_event(data: bytes) -> Event:
    # Event: artifact_id 1, execution_id 2, path 3 (Path.steps 1: Step.index 1 | Step.key 2), type 4
    msg = fields(data)
    name = ""
    path = first(msg, 3)
    if isinstance(path, bytes):
        for step in fields(path).get(1, []):
            if isinstance(step, bytes):
                key = first(fields(step), 2)
                if isinstance(key, bytes):
                    name = _str(key)
                    break
    return Event(_int(first(msg, 1)) or 0, _int(first(msg, 2)) or 0, _int(first(msg, 4)) or 0, name)


def list_options(page_token: str) -> Writer:
    # ListOperationOptions: max_result_size 1, next_page_token 3
    return Writer().varint(1, _PAGE).string(3, page_token)


# ---------------------------------------------------------------------------------- MLMD client
def mlmd_base_url(host: str) -> str:
    """Where ``/ml_metadata.MetadataStoreService/...`` lives for a KFP host: ``KFP_CI_MLMD_URL``, else the host
    without its ``/pipeline`` suffix (the Istio VirtualService and the UI's proxy both serve it at the root)."""
    override = os.environ.get("KFP_CI_MLMD_URL")
    if override:
        return override.rstrip("/")
    base = host.rstrip("/")
    return base[: -len("/pipeline")] if base.endswith("/pipeline") else base


class MlmdClient:
    """Unary gRPC-web calls to ML Metadata over an ``httpx.Client`` (the KFP client's, with its auth)."""

    def __init__(self, http: httpx.Client, base_url: str, *, attempts: int = 3,
                 sleep: Callable[[float], None] | None = None) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.attempts = max(1, attempts)
        self._sleep = sleep
        self.calls = 0

    def call(self, method: str, request: Writer | bytes) -> dict[int, list[int | bytes]]:
        from kfp_ci._protowire import frame

        url = f"{self.base_url}/{MLMD_SERVICE}/{method}"
        body = frame(bytes(request))
        headers = {"content-type": GRPC_WEB_CONTENT_TYPE, "accept": GRPC_WEB_CONTENT_TYPE, "x-grpc-web": "1",
                   "x-user-agent": "grpc-web-python/kfp-ci"}
        for attempt in range(self.attempts):
            self.calls += 1
            try:
                response = self.http.post(url, content=body, headers=headers)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout, httpx.RemoteProtocolError,
                    httpx.ReadError) as exc:
                if attempt + 1 < self.attempts:
                    self._pause(attempt)
                    continue
                raise ServerError(f"ML Metadata at {self.base_url} did not answer {method}: {type(exc).__name__}",
                                  hint="set KFP_CI_MLMD_URL to the metadata-envoy address") from None
            if response.status_code in (502, 503, 504) and attempt + 1 < self.attempts:
                self._pause(attempt)
                continue
            return self._decode(method, response)
        raise AssertionError("unreachable")  # pragma: no cover

    def _pause(self, attempt: int) -> None:
        import time

        (self._sleep or time.sleep)(min(2.0, 0.2 * 2**attempt))

    def _decode(self, method: str, response: httpx.Response) -> dict[int, list[int | bytes]]:
        from kfp_ci.client import api_error, html_error, is_html

        where = f"{self.base_url}/{MLMD_SERVICE}/{method}"
        if is_html(response):
            raise html_error(response)
        if response.status_code >= 400:
            if response.status_code == 404:
                raise NotKfpError(f"no ML Metadata route at {where} (HTTP 404)",
                                  hint="KFP v2 metrics are read through the UI's gRPC-web route; set "
                                  "KFP_CI_MLMD_URL to the metadata-envoy address if it lives elsewhere")
            raise api_error(response, action=f"ML Metadata {method}")
        content_type = response.headers.get("content-type", "")
        if not content_type.startswith("application/grpc-web"):
            raise NotKfpError(f"{where} answered {content_type or 'no content type'}, not gRPC-web")
        if content_type.startswith("application/grpc-web-text"):
            import base64

            raw = base64.b64decode(response.content)
        else:
            raw = response.content
        try:
            return fields(parse_grpc_web(raw, dict(response.headers)))
        except GrpcStatusError as exc:
            raise ServerError(f"ML Metadata {method} failed: {exc}") from None
        except ProtoError as exc:
            raise NotKfpError(f"{where} answered an invalid gRPC-web message: {exc}") from None

    # ----------------------------------------------------------------------------------- the calls
    def get_context_by_type_and_name(self, type_name: str, context_name: str) -> Node | None:
        # GetContextByTypeAndNameRequest: type_name 1, context_name 2 -> Response: context 1
        msg = self.call("GetContextByTypeAndName", Writer().string(1, type_name).string(2, context_name))
        context = first(msg, 1)
        return decode_context(context) if isinstance(context, bytes) else None

    def _paged(self, method: str, context_id: int, decode: Callable[[bytes], Node]) -> list[Node]:
        # Get{Executions,Artifacts}ByContextRequest: context_id 1, options 2 -> items 1, next_page_token 2
        out: list[Node] = []
        token = ""
        seen: set[str] = set()
        while True:
            request = Writer().varint(1, context_id)
            if token:
                request.message(2, list_options(token))
            msg = self.call(method, request)
            out.extend(decode(item) for item in msg.get(1, []) if isinstance(item, bytes))
            token = _str(first(msg, 2))
            if not token or token in seen:
                return out
            seen.add(token)

    def get_executions_by_context(self, context_id: int) -> list[Node]:
        return self._paged("GetExecutionsByContext", context_id, decode_execution)

    def get_artifacts_by_context(self, context_id: int) -> list[Node]:
        return self._paged("GetArtifactsByContext", context_id, decode_artifact)

    def get_events_by_execution_ids(self, execution_ids: Iterable[int]) -> list[Event]:
        # GetEventsByExecutionIDsRequest: execution_ids 1 (repeated int64) -> Response: events 1
        msg = self.call("GetEventsByExecutionIDs", Writer().repeated_varint(1, execution_ids))
        return [decode_event(item) for item in msg.get(1, []) if isinstance(item, bytes)]

    def get_artifacts_by_id(self, artifact_ids: Iterable[int]) -> list[Node]:
        # GetArtifactsByIDRequest: artifact_ids 1 (repeated int64) -> Response: artifacts 1
        msg = self.call("GetArtifactsByID", Writer().repeated_varint(1, artifact_ids))
        return [decode_artifact(item) for item in msg.get(1, []) if isinstance(item, bytes)]

    def get_artifact_types(self) -> dict[int, str]:
        # GetArtifactTypesRequest: (no fields needed) -> Response: artifact_types 1 (ArtifactType: id 1, name 2)
        msg = self.call("GetArtifactTypes", b"")
        out: dict[int, str] = {}
        for item in msg.get(1, []):
            if isinstance(item, bytes):
                t = fields(item)
                out[_int(first(t, 1)) or 0] = _str(first(t, 2))
        return out


def mlmd_run_metrics(mlmd: MlmdClient, run_id: str) -> RunMetrics:
    """The scalar metrics of a KFP v2 run, the way the UI's run comparison page gathers them."""
    context = mlmd.get_context_by_type_and_name(RUN_CONTEXT_TYPE, run_id)
    if context is None:
        raise GateFailed(f"ML Metadata has no {RUN_CONTEXT_TYPE} context for run {run_id}",
                         hint="is it a KFP v2 run that started executing?")
    executions = mlmd.get_executions_by_context(context.id)
    artifacts = mlmd.get_artifacts_by_context(context.id)
    events = mlmd.get_events_by_execution_ids([e.id for e in executions]) if executions else []
    known = {a.id for a in artifacts}
    linked = sorted({e.artifact_id for e in events if e.type == _OUTPUT_EVENT and e.artifact_id not in known})
    if linked:  # outputs not attributed to the run's context (e.g. reused from the cache): fetch them by id
        artifacts = artifacts + mlmd.get_artifacts_by_id(linked)
    if any(not a.type for a in artifacts):
        types = mlmd.get_artifact_types()
        artifacts = [a if a.type else Node(a.id, a.type_id, types.get(a.type_id or -1, ""), a.name, a.uri,
                                           a.custom_properties) for a in artifacts]
    by_execution = {e.id: e for e in executions}
    producer: dict[int, tuple[Node, str]] = {}
    for event in events:
        execution = by_execution.get(event.execution_id)
        if event.type != _OUTPUT_EVENT or execution is None:
            continue
        current = producer.get(event.artifact_id)
        # The container execution that wrote it wins over DAG executions re-exporting it.
        if current is None or ("Container" in execution.type and "Container" not in current[0].type):
            producer[event.artifact_id] = (execution, event.name)
    entries = []
    for artifact in sorted(artifacts, key=lambda a: a.id):
        if artifact.type != METRICS_TYPE:
            continue
        execution, output = producer.get(artifact.id, (None, ""))
        task = ""
        if execution is not None:
            task = str(execution.custom_properties.get("task_name") or execution.custom_properties.get(
                "display_name") or execution.name or "")
        output = output or str(artifact.custom_properties.get("display_name") or artifact.name)
        for key, value in artifact.custom_properties.items():
            if key in _SKIPPED_PROPERTIES or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if isinstance(value, float) and math.isnan(value):
                continue
            entries.append(MetricValue(key, float(value), task, output))
    return RunMetrics(run_id, "ML Metadata (gRPC-web)", tuple(entries))
