"""ML Metadata over gRPC-web: request bytes written by hand from the proto field numbers, independent of our encoder.

Field numbers (ml_metadata/proto/metadata_store_service.proto and metadata_store.proto, see docs/metrics.md):
GetContextByTypeAndNameRequest{type_name=1, context_name=2}; GetExecutionsByContextRequest{context_id=1};
GetArtifactsByContextRequest{context_id=1}; GetEventsByExecutionIDsRequest{execution_ids=1 (repeated int64)};
Context{id=1, type_id=2, name=3, type=6}; Execution{id=1, type_id=2, last_known_state=3, custom_properties=5,
type=7}; Artifact{id=1, type_id=2, uri=3, custom_properties=5, state=6, type=8}; Value{int_value=1,
double_value=2, string_value=3}; Event{artifact_id=1, execution_id=2, path=3, type=4}; Event.Path{steps=1};
Event.Path.Step{index=1, key=2}; map entries {key=1, value=2}.
"""

from __future__ import annotations

import struct

import httpx
import pytest

from kfp_ci._protowire import GrpcStatusError, parse_grpc_web
from kfp_ci.errors import AuthError, GateFailed, NotKfpError, ServerError
from kfp_ci.gate._mlmd import MlmdClient, mlmd_base_url, mlmd_run_metrics

CT = "application/grpc-web+proto"


def ld(field: int, payload: bytes) -> bytes:
    """Length-delimited field (wire type 2); lengths up to 16383 (one or two varint bytes, written by hand)."""
    n = len(payload)
    length = bytes([n]) if n < 128 else bytes([n & 0x7F | 0x80, n >> 7])
    return bytes([field << 3 | 2]) + length + payload


def dbl(field: int, value: float) -> bytes:
    return bytes([field << 3 | 1]) + struct.pack("<d", value)


def vint(field: int, value: int) -> bytes:
    assert 0 <= value < 128
    return bytes([field << 3, value])


def framed(message: bytes) -> bytes:
    return b"\x00" + len(message).to_bytes(4, "big") + message


OK_TRAILER = b"\x80" + len(b"grpc-status:0\r\n").to_bytes(4, "big") + b"grpc-status:0\r\n"


def reply(message: bytes) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": CT}, content=framed(message) + OK_TRAILER)


def prop(key: str, value: bytes) -> bytes:
    return ld(5, ld(1, key.encode()) + ld(2, value))


# A run as real ML Metadata describes it: one container execution that output one system.Metrics artifact.
CONTEXT = ld(1, vint(1, 7) + vint(2, 11) + ld(3, b"run-1") + ld(6, b"system.PipelineRun"))
EXECUTION = vint(1, 3) + vint(2, 12) + vint(3, 3) + prop("task_name", ld(3, b"retrain-best")) \
    + ld(7, b"system.ContainerExecution")
ARTIFACT = vint(1, 9) + vint(2, 13) + ld(3, b"minio://bucket/run-1/metrics") + prop("display_name", ld(3, b"metrics")) \
    + prop("r2", dbl(2, 0.9375)) + prop("mse", dbl(2, 52.5)) + prop("n_test", vint(1, 98)) + vint(6, 2) \
    + ld(8, b"system.Metrics")
OTHER_ARTIFACT = vint(1, 10) + vint(2, 14) + ld(3, b"minio://bucket/run-1/model") + prop("r2", dbl(2, 0.1)) \
    + ld(8, b"system.Model")
EVENT = vint(1, 9) + vint(2, 3) + ld(3, ld(1, ld(2, b"metrics"))) + vint(4, 4)


def recording_transport(seen: list[httpx.Request]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        method = request.url.path.rsplit("/", 1)[-1]
        return {
            "GetContextByTypeAndName": lambda: reply(CONTEXT),
            "GetExecutionsByContext": lambda: reply(ld(1, EXECUTION)),
            "GetArtifactsByContext": lambda: reply(ld(1, ARTIFACT) + ld(1, OTHER_ARTIFACT)),
            "GetEventsByExecutionIDs": lambda: reply(ld(1, EVENT)),
        }[method]()

    return httpx.MockTransport(handler)


def test_requests_match_the_proto_field_numbers_and_the_ui_route() -> None:
    seen: list[httpx.Request] = []
    with httpx.Client(transport=recording_transport(seen)) as http:
        metrics = mlmd_run_metrics(MlmdClient(http, "https://kubeflow.example.com"), "run-1")
    paths = [r.url.path for r in seen]
    assert paths == [
        "/ml_metadata.MetadataStoreService/GetContextByTypeAndName",
        "/ml_metadata.MetadataStoreService/GetExecutionsByContext",
        "/ml_metadata.MetadataStoreService/GetArtifactsByContext",
        "/ml_metadata.MetadataStoreService/GetEventsByExecutionIDs",
    ]
    assert all(r.method == "POST" and r.headers["content-type"] == CT and r.headers["x-grpc-web"] == "1"
               for r in seen)
    # type_name = 1, context_name = 2
    assert seen[0].content == framed(b"\x0a\x12system.PipelineRun" + b"\x12\x05run-1")
    # context_id = 1 (the id the context answer carried)
    assert seen[1].content == framed(b"\x08\x07")
    assert seen[2].content == framed(b"\x08\x07")
    # execution_ids = 1, proto2 repeated int64 (unpacked)
    assert seen[3].content == framed(b"\x08\x03")
    assert {(e.qualified, e.value, e.artifact) for e in metrics.entries} == {
        ("retrain-best.r2", 0.9375, "metrics"), ("retrain-best.mse", 52.5, "metrics"),
        ("retrain-best.n_test", 98.0, "metrics")}
    assert metrics.lookup("r2") == 0.9375  # the Model artifact's r2 property is not a metric


def test_large_ids_are_varints() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return reply(b"")

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        MlmdClient(http, "http://x").get_events_by_execution_ids([300, 1])
    assert seen[0].content == framed(b"\x08\xac\x02\x08\x01")


def test_unknown_run_has_no_context() -> None:
    with httpx.Client(transport=httpx.MockTransport(lambda r: reply(b""))) as http:
        with pytest.raises(GateFailed, match=r"no system\.PipelineRun context for run nope"):
            mlmd_run_metrics(MlmdClient(http, "http://x"), "nope")


def test_grpc_error_status_in_trailers_and_in_headers() -> None:
    trailer = b"grpc-status:5\r\ngrpc-message:context%20not%20found\r\n"
    body = b"\x80" + len(trailer).to_bytes(4, "big") + trailer
    with pytest.raises(GrpcStatusError) as err:
        parse_grpc_web(body)
    assert (err.value.code, err.value.message) == (5, "context not found")
    with pytest.raises(GrpcStatusError):
        parse_grpc_web(b"", {"grpc-status": "14", "grpc-message": "unavailable"})
    trailers_only = httpx.Response(200, headers={"content-type": CT, "grpc-status": "7",
                                                 "grpc-message": "denied"}, content=b"")
    with httpx.Client(transport=httpx.MockTransport(lambda r: trailers_only)) as http:
        with pytest.raises(ServerError, match=r"GetContextByTypeAndName failed: gRPC status 7: denied"):
            MlmdClient(http, "http://x").get_context_by_type_and_name("system.PipelineRun", "r")


def test_login_page_and_missing_route_are_clear_errors() -> None:
    login = httpx.Response(200, headers={"content-type": "text/html"},
                           content=b"<html><form action='/dex/auth/local/login'><input name=password></form></html>")
    with httpx.Client(transport=httpx.MockTransport(lambda r: login)) as http:
        with pytest.raises((AuthError, NotKfpError)):
            MlmdClient(http, "http://x").get_context_by_type_and_name("system.PipelineRun", "r")
    missing = httpx.Response(404, headers={"content-type": "text/plain"}, content=b"404 page not found")
    with httpx.Client(transport=httpx.MockTransport(lambda r: missing)) as http:
        with pytest.raises(NotKfpError, match=r"no ML Metadata route at http://x/ml_metadata"):
            MlmdClient(http, "http://x").get_context_by_type_and_name("system.PipelineRun", "r")


def test_route_base_is_the_dashboard_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KFP_CI_MLMD_URL", raising=False)
    assert mlmd_base_url("https://kf.example.com/pipeline") == "https://kf.example.com"
    assert mlmd_base_url("http://127.0.0.1:8888/") == "http://127.0.0.1:8888"
    monkeypatch.setenv("KFP_CI_MLMD_URL", "http://localhost:9090/")
    assert mlmd_base_url("https://kf.example.com/pipeline") == "http://localhost:9090"


def test_retries_a_503_then_succeeds() -> None:
    answers = [httpx.Response(503, content=b"upstream connect error"), reply(CONTEXT)]
    sleeps: list[float] = []
    with httpx.Client(transport=httpx.MockTransport(lambda r: answers.pop(0))) as http:
        context = MlmdClient(http, "http://x", sleep=sleeps.append).get_context_by_type_and_name("t", "run-1")
    assert context is not None and context.id == 7 and context.name == "run-1" and len(sleeps) == 1


def test_outputs_outside_the_context_are_fetched_by_id() -> None:
    """An OUTPUT event naming an artifact the context does not list (a cached output): GetArtifactsByID."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        method = request.url.path.rsplit("/", 1)[-1]
        return {
            "GetContextByTypeAndName": lambda: reply(CONTEXT),
            "GetExecutionsByContext": lambda: reply(ld(1, EXECUTION)),
            "GetArtifactsByContext": lambda: reply(b""),
            "GetEventsByExecutionIDs": lambda: reply(ld(1, EVENT)),
            "GetArtifactsByID": lambda: reply(ld(1, ARTIFACT)),
        }[method]()

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        metrics = mlmd_run_metrics(MlmdClient(http, "http://x"), "run-1")
    assert seen[-1].url.path.endswith("/GetArtifactsByID")
    assert seen[-1].content == framed(b"\x08\x09")  # artifact_ids = 1: [9]
    assert metrics.lookup("r2") == 0.9375


def test_pages_follow_next_page_token_with_list_options() -> None:
    seen: list[httpx.Request] = []
    pages = [reply(ld(1, ARTIFACT) + ld(2, b"t1")), reply(ld(1, OTHER_ARTIFACT))]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return pages.pop(0)

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        artifacts = MlmdClient(http, "http://x").get_artifacts_by_context(7)
    assert [a.id for a in artifacts] == [9, 10]
    assert seen[0].content == framed(b"\x08\x07")
    # context_id=1: 7, options=2: ListOperationOptions{max_result_size=1: 100, next_page_token=3: "t1"}
    assert seen[1].content == framed(b"\x08\x07" + b"\x12\x06" + b"\x08\x64" + b"\x1a\x02t1")
