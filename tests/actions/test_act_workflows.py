"""The reusable workflows and composite actions, run for real with act against ``kfp-ci serve`` on loopback."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kfp_ci.client import Client
from kfp_ci.local import LocalServer, ServerOptions

pytestmark = [pytest.mark.act, pytest.mark.slow]

TOKEN = "s3cr3t-kfp-token-4f9a27c1"
OUTPUTS = ("pipeline-id", "version-id", "version-name", "run-id", "run-url", "run-state")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LocalServer]:
    options = ServerOptions(data_dir=tmp_path / "kfp", auth="token", tokens={TOKEN: "ci@example.com"},
                            execute=False, run_delay=0.2)
    with LocalServer(options, host="127.0.0.1", port=0) as srv:
        yield srv


def _client(srv: LocalServer) -> Client:
    return Client(srv.url, auth=_Bearer(TOKEN))


class _Bearer(httpx.Auth):
    """The bearer token the server accepts (what the workflow's token secret carries)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


def _printed(output: str, prefix: str) -> dict[str, str]:
    return dict(re.findall(rf"{prefix} ([a-z-]+)=(.*?)\s*$", output, flags=re.M))


def test_deploy_workflow_uploads_a_version_sets_every_output_and_masks_the_token(consumer: Path, run_act: Any,
                                                                                 server: LocalServer) -> None:
    """push to main: the example caller runs kfp-deploy.yml, a version lands on the server, outputs flow out."""
    result = run_act(consumer, "push", "kfp-deploy.yml",
                     variables={"KFP_HOST": server.url, "KFP_AUTH": "token",
                                "KFP_PIPELINES": "compiled/hello-ci.yaml"},
                     secrets={"KFP_TOKEN": TOKEN})
    assert result.returncode == 0, result.output[-4000:]
    outputs = _printed(result.output, "deployed")
    assert set(OUTPUTS) <= set(outputs), result.output[-3000:]
    assert all(outputs[name] for name in OUTPUTS), outputs
    assert outputs["run-state"] == "SUCCEEDED"
    assert outputs["run-url"].startswith(server.url)

    [pipeline] = _client(server).list_pipelines()
    assert pipeline.id == outputs["pipeline-id"]
    versions = _client(server).list_pipeline_versions(pipeline.id)
    assert outputs["version-id"] in {v.id for v in versions}
    assert _client(server).get_run(outputs["run-id"]).state == "SUCCEEDED"

    assert TOKEN not in result.output
    assert "***" in result.output
