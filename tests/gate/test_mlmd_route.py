"""The embedded server's ML Metadata route, over a real loopback socket, read by the gate's MLMD client."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import httpx
import pytest

pytest.importorskip("starlette")

from kfp_ci._protowire import GrpcStatusError, parse_grpc_web
from kfp_ci.gate._mlmd import MlmdClient, mlmd_run_metrics
from kfp_ci.local._mlmd import mlmd_routes

CT = "application/grpc-web+proto"


class Store:
    """What the server's store gives: one dict per output artifact of an executed run."""

    def __init__(self) -> None:
        self.runs: dict[str, list[dict[str, Any]]] = {
            "run-a": [
                {"run_id": "run-a", "task": "compare-candidates", "name": "metrics", "type": "system.Metrics",
                 "uri": "file:///x/compare/metrics", "metadata": {"svr_r2": 0.91, "random_forest_r2": 0.88}},
                {"run_id": "run-a", "task": "retrain-best", "name": "metrics", "type": "system.Metrics",
                 "uri": "file:///x/retrain/metrics", "metadata": {"r2": 0.93, "mse": 50.5, "n_test": 98}},
                {"run_id": "run-a", "task": "retrain-best", "name": "model", "type": "system.Model",
                 "uri": "file:///x/retrain/model", "metadata": {"model_type": "svr", "features": ["a", "b"]}},
                {"run_id": "run-a", "task": "select", "name": "", "type": "", "uri": "", "metadata": {},
                 "parameters": {"Output": "svr"}},
            ],
            "run-b": [
                {"run_id": "run-b", "task": "train", "name": "metrics", "type": "system.Metrics",
                 "uri": "file:///y/metrics", "metadata": {"r2": 0.5}},
            ],
        }

    def run_artifacts(self, run_id: str) -> list[dict[str, Any]]:
        return self.runs.get(run_id, [])


def framed(message: bytes) -> bytes:
    return b"\x00" + len(message).to_bytes(4, "big") + message


@pytest.mark.parametrize("prefix", ["", "/pipeline"])
def test_gate_client_reads_the_embedded_route(serve_routes: Callable[[list[Any]], str], prefix: str) -> None:
    url = serve_routes(mlmd_routes(Store()))
    with httpx.Client() as http:
        metrics = mlmd_run_metrics(MlmdClient(http, url + prefix), "run-a")
        other = mlmd_run_metrics(MlmdClient(http, url + prefix), "run-b")
    assert {(e.task, e.artifact, e.name, e.value) for e in metrics.entries} == {
        ("compare-candidates", "metrics", "svr_r2", 0.91), ("compare-candidates", "metrics", "random_forest_r2", 0.88),
        ("retrain-best", "metrics", "r2", 0.93), ("retrain-best", "metrics", "mse", 50.5),
        ("retrain-best", "metrics", "n_test", 98.0)}
    assert other.lookup("r2") == 0.5


def test_answers_have_the_proto_shapes(serve_routes: Callable[[list[Any]], str]) -> None:
    url = serve_routes(mlmd_routes(Store()))
    service = f"{url}/ml_metadata.MetadataStoreService"
    headers = {"content-type": CT, "x-grpc-web": "1"}
    with httpx.Client() as http:
        # GetContextByTypeAndNameRequest{type_name=1: "system.PipelineRun", context_name=2: "run-b"}
        answer = http.post(f"{service}/GetContextByTypeAndName", headers=headers,
                           content=framed(b"\x0a\x12system.PipelineRun\x12\x05run-b"))
        assert answer.status_code == 200 and answer.headers["content-type"].startswith(CT)
        context = parse_grpc_web(answer.content)
        # Response{context=1: Context{id=1, type_id=2, name=3: "run-b", type=6: "system.PipelineRun"}}
        assert context[0] == 0x0A
        inner = context[2:]
        assert inner[0] == 0x08 and b"\x1a\x05run-b" in inner and inner.endswith(b"\x32\x12system.PipelineRun")
        context_id = inner[1]
        # GetArtifactsByContextRequest{context_id=1}
        arts = parse_grpc_web(http.post(f"{service}/GetArtifactsByContext", headers=headers,
                                        content=framed(bytes([0x08, context_id]))).content)
        # one Artifact: uri=3, custom property r2 as Value{double_value=2}, state=6 LIVE, type=8
        assert b"\x1a\x11file:///y/metrics" in arts
        assert b"\x0a\x02r2\x12\x09\x11" + struct.pack("<d", 0.5) in arts
        assert b"\x30\x02" in arts and arts.endswith(b"\x42\x0esystem.Metrics")
        # packed execution_ids are accepted too (any protobuf parser must)
        execs = parse_grpc_web(http.post(f"{service}/GetExecutionsByContext", headers=headers,
                                         content=framed(bytes([0x08, context_id]))).content)
        execution_id = execs[3]  # Response{executions=1: Execution{id=1: N ...}}
        assert execs[2] == 0x08
        packed = parse_grpc_web(http.post(f"{service}/GetEventsByExecutionIDs", headers=headers,
                                          content=framed(bytes([0x0A, 1, execution_id]))).content)
        unpacked = parse_grpc_web(http.post(f"{service}/GetEventsByExecutionIDs", headers=headers,
                                            content=framed(bytes([0x08, execution_id]))).content)
        assert packed == unpacked and b"\x20\x04" in packed  # Event.type=4 OUTPUT
        # unknown run: an empty answer, as MLMD gives
        empty = http.post(f"{service}/GetContextByTypeAndName", headers=headers,
                          content=framed(b"\x0a\x12system.PipelineRun\x12\x04nope"))
        assert parse_grpc_web(empty.content) == b""
        # unknown method: gRPC UNIMPLEMENTED in the trailer
        with pytest.raises(GrpcStatusError) as err:
            parse_grpc_web(http.post(f"{service}/PutArtifacts", headers=headers, content=framed(b"")).content)
        assert err.value.code == 12
        # not gRPC-web at all
        assert http.post(f"{service}/GetArtifactTypes", json={}).status_code == 415


def test_output_parameters_are_the_execution_outputs_struct(serve_routes: Callable[[list[Any]], str]) -> None:
    url = serve_routes(mlmd_routes(Store()))
    service = f"{url}/ml_metadata.MetadataStoreService"
    headers = {"content-type": CT, "x-grpc-web": "1"}
    with httpx.Client() as http:
        context = parse_grpc_web(http.post(f"{service}/GetContextByTypeAndName", headers=headers,
                                           content=framed(b"\x0a\x12system.PipelineRun\x12\x05run-a")).content)
        execs = parse_grpc_web(http.post(f"{service}/GetExecutionsByContext", headers=headers,
                                         content=framed(bytes([0x08, context[3]]))).content)
    # custom_properties=5 entry {key=1: "outputs", value=2: Value{struct_value=4: Struct{fields=1: {"Output":
    # google.protobuf.Value{string_value=3: "svr"}}}}}
    value = b"\x1a\x03svr"  # google.protobuf.Value{string_value=3}
    fields_entry = b"\x0a\x06Output\x12\x05" + value  # Struct.fields map entry {key=1, value=2}: 15 bytes
    struct_ = b"\x0a\x0f" + fields_entry  # Struct{fields=1}: 17 bytes
    mlmd_value = b"\x22\x11" + struct_  # ml_metadata.Value{struct_value=4}: 19 bytes
    entry = b"\x0a\x07outputs\x12\x13" + mlmd_value  # 30 bytes
    assert b"\x2a\x1e" + entry in execs
