"""ML Metadata's gRPC-web route for the embedded server: the runs it executed, as the KFP UI would read them.

``mlmd_routes(store)`` serves ``POST /ml_metadata.MetadataStoreService/<Method>`` (``application/grpc-web+proto``
and ``application/grpc-web-text``) with the message shapes of ``ml_metadata/proto/metadata_store_service.proto``:
``GetContextByTypeAndName``, ``GetExecutionsByContext``, ``GetArtifactsByContext``, ``GetEventsByExecutionIDs``,
``GetArtifactTypes``, ``GetArtifactsByID`` and ``GetExecutionsByID``. Any other method answers gRPC status 12
(UNIMPLEMENTED), like a server that does not know it.

The data comes from ``store.run_artifacts(run_id)``: one dict per output artifact of an executed task, with
``task`` (or ``task_name``), ``name`` (the output name), ``type`` (or ``schema_title``: ``system.Metrics``...),
``uri`` and ``metadata`` (for ``system.Metrics``, the scalar metrics); a record without ``type`` and ``uri``
(a task with output parameters only) becomes an execution without artifact. A run with no record (``[]``,
``None`` or a ``LookupError``) has no ``system.PipelineRun`` context unless ``store.run_exists(run_id)`` (if
the store has it) says it exists. A record's ``parameters`` (the task's output parameters) become the
execution's ``outputs`` custom property, a ``Struct``, as KFP's launcher records them.
Like KFP's backend, numbers become ``double_value``, booleans ``int_value``, lists and dicts a ``Struct``.

``mlmd_routes(store, can_read)``: ``can_read(user, run_id)`` (the caller's ``kubeflow-userid``) decides whether a
run is visible; in multi-user mode the server passes one that allows only the caller's namespaces, so another
user's run id finds nothing, exactly like an unknown one.
"""

from __future__ import annotations

import base64
import contextvars
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kfp_ci._protowire import (
    ProtoError,
    Writer,
    fields,
    first,
    grpc_web_body,
    repeated_varints,
    to_signed,
)

__all__ = ["mlmd_routes"]

SERVICE = "ml_metadata.MetadataStoreService"
RUN_CONTEXT_TYPE = "system.PipelineRun"
_CONTEXT_TYPE_ID = 10
PIPELINE_CONTEXT_TYPE = "system.Pipeline"
_PIPELINE_CONTEXT_TYPE_ID = 11
_EXECUTION_TYPE = "system.ContainerExecution"
_EXECUTION_TYPE_ID = 20
_ARTIFACT_TYPES = ("system.Artifact", "system.Dataset", "system.Model", "system.Metrics",
                   "system.ClassificationMetrics", "system.SlicedClassificationMetrics", "system.HTML",
                   "system.Markdown")
_COMPLETE = 3  # Execution.State.COMPLETE
_OUTPUT = 4  # Event.Type.OUTPUT
_LIVE = 2  # Artifact.State.LIVE
_UNIMPLEMENTED, _INVALID_ARGUMENT = 12, 3
_CALLER: contextvars.ContextVar[str | None] = contextvars.ContextVar("kfp_ci_mlmd_caller", default=None)


# ------------------------------------------------------------------------------------------ values
def _struct_value(value: Any) -> Writer:
    """``google.protobuf.Value``: null 1, number 2, string 3, bool 4, struct 5, list 6."""
    w = Writer()
    if value is None:
        w.varint(1, 0)
    elif isinstance(value, bool):
        w.varint(4, value)
    elif isinstance(value, (int, float)):
        w.double(2, float(value))
    elif isinstance(value, Mapping):
        w.message(5, _struct(value))
    elif isinstance(value, (list, tuple)):
        lst = Writer()
        for item in value:
            lst.message(1, _struct_value(item))
        w.message(6, lst)
    else:
        w.string(3, str(value))
    return w


def _struct(value: Mapping[str, Any]) -> Writer:
    """``google.protobuf.Struct``: fields 1 (map<string, Value>)."""
    w = Writer()
    for key, item in value.items():
        w.message(1, Writer().string(1, str(key)).message(2, _struct_value(item)))
    return w


def _mlmd_value(value: Any) -> Writer:
    """``ml_metadata.Value``: int_value 1, double_value 2, string_value 3, struct_value 4 (KFP's conversion)."""
    w = Writer()
    if isinstance(value, bool):
        w.varint(1, int(value))
    elif isinstance(value, (int, float)):
        w.double(2, float(value))
    elif isinstance(value, str):
        w.string(3, value)
    elif isinstance(value, Mapping):
        w.message(4, _struct({"struct": dict(value)}))
    elif isinstance(value, (list, tuple)):
        w.message(4, _struct({"list": list(value)}))
    else:
        w.string(3, str(value))
    return w


def _properties(w: Writer, number: int, props: Mapping[str, Any]) -> None:
    for key, value in props.items():
        w.message(number, Writer().string(1, key).message(2, _mlmd_value(value)))


# ------------------------------------------------------------------------------------------ model
class _Ids:
    """Stable ids for contexts, executions and artifacts, allocated on first sight (per server)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: dict[tuple[str, ...], int] = {}
        self._keys: dict[int, tuple[str, ...]] = {}

    def id(self, *key: str) -> int:
        with self._lock:
            if key not in self._ids:
                new = len(self._ids) + 1
                self._ids[key] = new
                self._keys[new] = key
            return self._ids[key]

    def key(self, ident: int) -> tuple[str, ...] | None:
        with self._lock:
            return self._keys.get(ident)


class _Run:
    def __init__(self, ids: _Ids, run_id: str, outputs: Iterable[Mapping[str, Any]]) -> None:
        self.run_id = run_id
        self.context_id = ids.id("context", run_id)
        self.tasks: dict[str, int] = {}
        self.outputs: dict[str, dict[str, Any]] = {}  # task -> output parameters
        self.artifacts: list[tuple[int, int, str, Mapping[str, Any]]] = []  # (artifact id, execution id, name, raw)
        for raw in outputs:
            task = str(raw.get("task") or raw.get("task_name") or raw.get("producer_task") or "")
            name = str(raw.get("name") or raw.get("output") or "")
            execution = self.tasks.setdefault(task, ids.id("execution", run_id, task))
            if isinstance(raw.get("parameters"), Mapping) and raw["parameters"]:
                self.outputs.setdefault(task, {}).update(raw["parameters"])
            if not (raw.get("type") or raw.get("schema_title") or raw.get("uri")):
                continue  # a task with output parameters only: an execution, no artifact
            artifact = ids.id("artifact", run_id, task, name)
            self.artifacts.append((artifact, execution, name, raw))


class _Service:
    def __init__(self, store: Any, can_read: Callable[[str | None, str], bool] | None = None) -> None:
        self.store = store
        self.can_read = can_read
        self.ids = getattr(store, "mlmd_ids", None) or _Ids()  # the store's ids: the same as in the runs' details
        self.type_ids = {name: 100 + i for i, name in enumerate(_ARTIFACT_TYPES)}

    def type_id(self, name: str) -> int:
        if name not in self.type_ids:
            self.type_ids[name] = 100 + len(self.type_ids)
        return self.type_ids[name]

    def run(self, run_id: str) -> _Run | None:
        if self.can_read is not None and not self.can_read(_CALLER.get(), run_id):
            return None  # another tenant's run: not there, like an unknown id
        try:
            outputs = self.store.run_artifacts(run_id)
        except LookupError:
            return None
        exists = getattr(self.store, "run_exists", None)
        if not outputs and not (callable(exists) and exists(run_id)):
            return None
        return _Run(self.ids, run_id, list(outputs))

    def run_of(self, ident: int) -> _Run | None:
        key = self.ids.key(ident)
        return self.run(key[1]) if key else None

    # ----------------------------------------------------------------------------- encoders
    def context(self, run: _Run) -> Writer:
        # Context: id 1, type_id 2, name 3, type 6
        return Writer().varint(1, run.context_id).varint(2, _CONTEXT_TYPE_ID).string(3, run.run_id).string(
            6, RUN_CONTEXT_TYPE)

    def execution(self, run: _Run, task: str, ident: int) -> Writer:
        # Execution: id 1, type_id 2, last_known_state 3, custom_properties 5, type 7
        w = Writer().varint(1, ident).varint(2, _EXECUTION_TYPE_ID).varint(3, _COMPLETE)
        _properties(w, 5, {"task_name": task, "display_name": task, "pipeline_run_id": run.run_id})
        if run.outputs.get(task):  # output parameters: custom property "outputs", a Struct (as KFP's launcher)
            w.message(5, Writer().string(1, "outputs").message(2, Writer().message(4, _struct(run.outputs[task]))))
        return w.string(7, _EXECUTION_TYPE)

    def artifact(self, ident: int, name: str, raw: Mapping[str, Any]) -> Writer:
        # Artifact: id 1, type_id 2, uri 3, custom_properties 5, state 6, type 8
        type_name = str(raw.get("type") or raw.get("schema_title") or "system.Artifact")
        w = Writer().varint(1, ident).varint(2, self.type_id(type_name)).string(3, str(raw.get("uri") or ""))
        props: dict[str, Any] = {"display_name": name}
        props.update(dict(raw.get("metadata") or {}))
        _properties(w, 5, props)
        return w.varint(6, _LIVE).string(8, type_name)

    # ------------------------------------------------------------------------------- methods
    def GetContextByTypeAndName(self, msg: dict[int, list[int | bytes]]) -> Writer:
        # Request: type_name 1, context_name 2, type_version 3 -> Response: context 1 (absent when not found)
        type_name, name = _text(first(msg, 1)), _text(first(msg, 2))
        if type_name == PIPELINE_CONTEXT_TYPE and name:  # a run's pipeline_context_id, when the store keeps ids
            known = getattr(self.ids, "known", None)
            ident = known("pipeline", name) if callable(known) else None
            return Writer().message(1, Writer().varint(1, ident).varint(2, _PIPELINE_CONTEXT_TYPE_ID).string(
                3, name).string(6, PIPELINE_CONTEXT_TYPE) if ident else None)
        run = self.run(name) if type_name == RUN_CONTEXT_TYPE and name else None
        return Writer().message(1, self.context(run) if run else None)

    def GetExecutionsByContext(self, msg: dict[int, list[int | bytes]]) -> Writer:
        # Request: context_id 1 -> Response: executions 1
        run = self._context_run(msg)
        w = Writer()
        for task, ident in (run.tasks.items() if run else ()):
            w.message(1, self.execution(run, task, ident))  # type: ignore[arg-type]
        return w

    def GetArtifactsByContext(self, msg: dict[int, list[int | bytes]]) -> Writer:
        # Request: context_id 1 -> Response: artifacts 1
        run = self._context_run(msg)
        w = Writer()
        for ident, _execution, name, raw in (run.artifacts if run else ()):
            w.message(1, self.artifact(ident, name, raw))
        return w

    def GetEventsByExecutionIDs(self, msg: dict[int, list[int | bytes]]) -> Writer:
        # Request: execution_ids 1 -> Response: events 1 (artifact_id 1, execution_id 2, path 3, type 4)
        w = Writer()
        for execution_id in repeated_varints(msg, 1):
            run = self.run_of(to_signed(execution_id))
            for ident, execution, name, _raw in (run.artifacts if run else ()):
                if execution == execution_id:
                    path = Writer().message(1, Writer().string(2, name))
                    w.message(1, Writer().varint(1, ident).varint(2, execution).message(3, path).varint(4, _OUTPUT))
        return w

    def GetArtifactTypes(self, msg: dict[int, list[int | bytes]]) -> Writer:
        # Response: artifact_types 1 (ArtifactType: id 1, name 2)
        w = Writer()
        for name, ident in sorted(self.type_ids.items(), key=lambda item: item[1]):
            w.message(1, Writer().varint(1, ident).string(2, name))
        return w

    def GetArtifactsByID(self, msg: dict[int, list[int | bytes]]) -> Writer:
        # Request: artifact_ids 1 -> Response: artifacts 1
        w = Writer()
        for artifact_id in repeated_varints(msg, 1):
            run = self.run_of(artifact_id)
            for ident, _execution, name, raw in (run.artifacts if run else ()):
                if ident == artifact_id:
                    w.message(1, self.artifact(ident, name, raw))
        return w

    def GetExecutionsByID(self, msg: dict[int, list[int | bytes]]) -> Writer:
        # Request: execution_ids 1 -> Response: executions 1
        w = Writer()
        for execution_id in repeated_varints(msg, 1):
            run = self.run_of(execution_id)
            for task, ident in (run.tasks.items() if run else ()):
                if ident == execution_id:
                    w.message(1, self.execution(run, task, ident))  # type: ignore[arg-type]
        return w

    def _context_run(self, msg: dict[int, list[int | bytes]]) -> _Run | None:
        value = first(msg, 1)
        if not isinstance(value, int):
            return None
        key = self.ids.key(to_signed(value))
        return self.run(key[1]) if key and key[0] == "context" else None


def _text(value: int | bytes | None) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else ""


def _request_message(body: bytes) -> bytes:
    """The message inside a unary gRPC-web request body (one data frame)."""
    if len(body) < 5:
        raise ProtoError("request shorter than a gRPC-web frame header")
    size = int.from_bytes(body[1:5], "big")
    if body[0] & 0x80 or len(body) < 5 + size:
        raise ProtoError("request is not one complete gRPC-web data frame")
    return body[5:5 + size]


def mlmd_routes(store: Any, can_read: Callable[[str | None, str], bool] | None = None) -> list[Route]:
    """Starlette routes answering ML Metadata's gRPC-web calls for ``store``'s executed runs (those ``can_read``
    allows the caller, when given)."""
    service = _Service(store, can_read)
    methods: dict[str, Callable[[dict[int, list[int | bytes]]], Writer]] = {
        name: getattr(service, name) for name in (
            "GetContextByTypeAndName", "GetExecutionsByContext", "GetArtifactsByContext",
            "GetEventsByExecutionIDs", "GetArtifactTypes", "GetArtifactsByID", "GetExecutionsByID")
    }

    async def endpoint(request: Request) -> Response:
        cors = {"access-control-allow-origin": "*", "access-control-expose-headers": "grpc-status,grpc-message"}
        if request.method == "OPTIONS":
            return Response(status_code=204, headers={
                **cors, "access-control-allow-methods": "POST",
                "access-control-allow-headers": "content-type,x-grpc-web,x-user-agent"})
        content_type = request.headers.get("content-type", "")
        text = content_type.startswith("application/grpc-web-text")
        if not content_type.startswith("application/grpc-web"):
            return Response("expected application/grpc-web+proto", status_code=415, media_type="text/plain")
        body = await request.body()
        _CALLER.set(request.headers.get("kubeflow-userid") or None)
        method = request.path_params["method"]
        handler = methods.get(method)
        try:
            if text:
                body = base64.b64decode(body)
            if handler is None:
                out = grpc_web_body(b"", _UNIMPLEMENTED, f"unknown method {SERVICE}/{method}")
            else:
                out = grpc_web_body(bytes(handler(fields(_request_message(body)))))
        except (ProtoError, ValueError) as exc:
            out = grpc_web_body(b"", _INVALID_ARGUMENT, f"cannot parse the request: {exc}")
        media = "application/grpc-web-text+proto" if text else "application/grpc-web+proto"
        return Response(base64.b64encode(out) if text else out, media_type=media, headers=cors)

    return [Route(f"/{SERVICE}/{{method}}", endpoint, methods=["POST", "OPTIONS"])]
