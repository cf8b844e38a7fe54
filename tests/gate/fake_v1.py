"""A KFP 1.8 API (v1beta1) as httpx.MockTransport, shaped by the v1beta1 1.8.5 swagger: healthz, runs, run.metrics."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class V1Run:
    id: str
    created: str
    metrics: dict[str, float]
    status: str = "Succeeded"
    pipeline_id: str = "p-energy"
    experiment_id: str = "exp-1"
    node_id: str = "train-abc"

    def json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": f"run {self.id}",
            "status": self.status,
            "created_at": self.created,
            "pipeline_spec": {"pipeline_id": self.pipeline_id},
            "resource_references": [{"key": {"type": "EXPERIMENT", "id": self.experiment_id},
                                     "relationship": "OWNER"}],
            "metrics": [{"name": k, "node_id": self.node_id, "number_value": v, "format": "RAW"}
                        for k, v in self.metrics.items()],
        }


@dataclass
class FakeV1:
    runs: list[V1Run] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == "/apis/v2beta1/healthz":
            return httpx.Response(404, json={"error": "Not Found", "code": 5})
        if path == "/apis/v1beta1/healthz":
            return httpx.Response(200, json={"commit_sha": "abc", "tag_name": "1.8.5", "multi_user": False})
        if path == "/apis/v1beta1/runs":
            exp = request.url.params.get("resource_reference_key.id")
            runs = [r for r in self.runs if not exp or r.experiment_id == exp]
            runs.sort(key=lambda r: r.created, reverse=True)
            return httpx.Response(200, json={"runs": [r.json() for r in runs], "total_size": len(runs)})
        if path.startswith("/apis/v1beta1/runs/"):
            run_id = path.rsplit("/", 1)[-1]
            for run in self.runs:
                if run.id == run_id:
                    return httpx.Response(200, json={"run": run.json(), "pipeline_runtime": {
                        "workflow_manifest": json.dumps({"status": {"phase": run.status}})}})
            return httpx.Response(404, json={"error": f"run {run_id} not found", "code": 5})
        return httpx.Response(404, json={"error": "no route", "code": 5})

    def client(self) -> Any:
        from kfp_ci.client import Client

        return Client("http://kfp.test", transport=httpx.MockTransport(self.handler))
