"""The gate on KFP v2 runs: run records from a v2beta1 API, metrics from ``mlmd_routes`` (the embedded server's
ML Metadata route) reached through the real kfp-ci Client at the dashboard root, as the KFP UI reaches it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

pytest.importorskip("starlette")

from kfp_ci.client import Client
from kfp_ci.gate import evaluate_gate
from kfp_ci.local._mlmd import mlmd_routes

RUNS = {  # run id -> (created_at, state, final metrics)
    "run-1": ("2026-03-01T00:00:00Z", "SUCCEEDED", {"r2": 0.94, "mse": 52.0}),
    "run-2": ("2026-03-02T00:00:00Z", "FAILED", {}),
    "run-3": ("2026-03-03T00:00:00Z", "SUCCEEDED", {"r2": 0.61, "mse": 410.0}),
}


class Store:
    def run_artifacts(self, run_id: str) -> list[dict[str, Any]]:
        if run_id not in RUNS or not RUNS[run_id][2]:
            return []
        return [{"run_id": run_id, "task": "retrain-best", "name": "metrics", "type": "system.Metrics",
                 "uri": f"file:///{run_id}/metrics", "metadata": RUNS[run_id][2]},
                {"run_id": run_id, "task": "compare-candidates", "name": "metrics", "type": "system.Metrics",
                 "uri": f"file:///{run_id}/cmp", "metadata": {"svr_r2": 0.5}}]


def v2_run(run_id: str) -> dict[str, Any]:
    created, state, _ = RUNS[run_id]
    return {"run_id": run_id, "display_name": run_id, "experiment_id": "exp", "state": state,
            "created_at": created, "pipeline_version_reference": {"pipeline_id": "p", "pipeline_version_id": "v"}}


def make_client(paths: list[str], mlmd_url: str) -> Client:
    """The dashboard: the API under /pipeline, ML Metadata at the root (forwarded to the real route on loopback)."""

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        paths.append(path)
        if path.startswith("/ml_metadata."):
            answer = httpx.post(mlmd_url + path, content=request.content, headers={
                k: v for k, v in request.headers.items() if k in ("content-type", "x-grpc-web", "accept")})
            return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)
        if path == "/pipeline/apis/v2beta1/healthz":
            return httpx.Response(200, json={"commit_sha": "x", "tag_name": "2.17.0", "multi_user": False})
        if path == "/pipeline/apis/v2beta1/runs":
            runs = sorted(RUNS, key=lambda r: RUNS[r][0], reverse=True)
            return httpx.Response(200, json={"runs": [v2_run(r) for r in runs], "total_size": len(runs)})
        if path.startswith("/pipeline/apis/v2beta1/runs/"):
            return httpx.Response(200, json=v2_run(path.rsplit("/", 1)[-1]))
        return httpx.Response(404, json={"error": "no route", "code": 5})

    return Client("https://kubeflow.test/pipeline", transport=httpx.MockTransport(handler))


def test_v2_metrics_come_from_ml_metadata_at_the_dashboard_root(
        monkeypatch: pytest.MonkeyPatch, serve_routes: Callable[[list[Any]], str]) -> None:
    monkeypatch.delenv("KFP_CI_MLMD_URL", raising=False)
    paths: list[str] = []
    with make_client(paths, serve_routes(mlmd_routes(Store()))) as client:
        good = evaluate_gate(client, "run-1", require=["r2>=0.8", "mse<=120"])
        worse = evaluate_gate(client, "run-3", require=["r2>=0.5"], max_regression=["r2=0.02"], history=5)
    assert good.passed and good.metrics.source == "ML Metadata (gRPC-web)"
    assert [r.value for r in good.rows] == [0.94, 52.0]
    assert "/ml_metadata.MetadataStoreService/GetContextByTypeAndName" in paths
    # the failed run-2 is skipped; run-1 is the baseline
    assert worse.baseline_run_id == "run-1" and not worse.passed
    assert worse.rows[0].failures == ("dropped 0.33 from baseline 0.94 (max 0.02)",)
    assert worse.history["r2"] == (("run-1", 0.94), ("run-3", 0.61))
    # qualified names reach the other task's metrics artifact
    assert worse.metrics.lookup("compare-candidates.svr_r2") == 0.5
