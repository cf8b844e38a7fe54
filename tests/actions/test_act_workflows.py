"""The reusable workflows and composite actions, run for real with act against ``kfp-ci serve`` on loopback."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from act_helpers import compile_pipeline, git

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


def _assert_not_on_disk(secret: str, tree: Path) -> None:
    """Nothing act or kfp-ci wrote under ``tree`` (workspace, outputs, summaries, caches) holds the secret."""
    leaked = [p for p in tree.rglob("*") if p.is_file() and not p.is_symlink()
              and secret.encode() in p.read_bytes()]
    assert not leaked, leaked


def _printed(output: str, prefix: str) -> dict[str, str]:
    """``<prefix> name=value`` lines a step printed (act shows step output after ``| ``)."""
    return dict(re.findall(rf"\| {prefix} ([a-z-]+)=(.*?)\s*$", output, flags=re.M))


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
    _assert_not_on_disk(TOKEN, consumer.parent)


def test_retrain_workflow_runs_the_latest_version_and_waits(consumer: Path, compiled_hello: Path, run_act: Any,
                                                            server: LocalServer) -> None:
    """schedule: the example caller runs kfp-retrain.yml, which runs the newest version and waits for SUCCEEDED."""
    client = _client(server)
    pipeline = client.create_pipeline("hello-ci")
    client.upload_pipeline_version(compiled_hello, "v1", pipeline_id=pipeline.id)
    newest = client.upload_pipeline_version(compiled_hello, "v2", pipeline_id=pipeline.id)

    result = run_act(consumer, "schedule", "kfp-retrain.yml",
                     variables={"KFP_HOST": server.url, "KFP_AUTH": "token", "KFP_PIPELINE": "hello-ci"},
                     secrets={"KFP_TOKEN": TOKEN})
    assert result.returncode == 0, result.output[-4000:]
    printed = _printed(result.output, "retrained")
    assert printed.get("version-name") == "v2", result.output[-3000:]
    assert printed.get("run-state") == "SUCCEEDED"
    run = client.get_run(printed["run-id"])
    assert run.pipeline_version_id == newest.id
    assert run.state == "SUCCEEDED"
    assert TOKEN not in result.output


def test_retrain_workflow_fails_clearly_when_nothing_is_deployed(consumer: Path, run_act: Any,
                                                                 server: LocalServer) -> None:
    """No such pipeline on the server: the job fails with one line saying to deploy first, no traceback."""
    result = run_act(consumer, "schedule", "kfp-retrain.yml",
                     variables={"KFP_HOST": server.url, "KFP_AUTH": "token", "KFP_PIPELINE": "hello-ci"},
                     secrets={"KFP_TOKEN": TOKEN})
    assert result.returncode != 0
    assert "no pipeline named 'hello-ci'" in result.output
    assert "Traceback" not in result.output
    assert TOKEN not in result.output


CHANGED_SOURCE = '''
from kfp import dsl


@dsl.component(base_image="python:3.11-slim")
def make_rows(rows: int) -> int:
    return rows * 2


@dsl.component(base_image="python:3.12-slim")
def report(total: int) -> str:
    return f"total={total}"


@dsl.component(base_image="python:3.11-slim")
def publish(total: int, channel: str) -> str:
    return f"{channel}:{total}"


@dsl.pipeline(name="hello-ci")
def hello_pipeline(rows: int = 3, channel: str = "ml"):
    first = make_rows(rows=rows)
    report(total=first.output)
    publish(total=first.output, channel=channel)
'''

BROKEN_SOURCE = '''
from kfp import dsl


@dsl.component(base_image="python:3.11-slim")
def make_rows(rows: int) -> int:
    return rows * 2


@dsl.pipeline(name="hello-ci")
def hello_pipeline(rows: int = 3):
    make_rows(rows=rows, nonsense=1)
'''

PR_EVENT = '{"pull_request": {"number": 7, "base": {"ref": "main"}, "head": {"ref": "feature"}}}'


def _branch(repo: Path, source: str, *, recompile: bool) -> None:

    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "pipelines" / "hello.py").write_text(source, encoding="utf-8")
    if recompile:
        compile_pipeline(repo / "pipelines" / "hello.py", repo / "compiled" / "hello-ci.yaml")
    git(repo, "commit", "-q", "-am", "change the pipeline")


def test_validate_workflow_passes_and_summarises_what_changed(consumer: Path, run_act: Any) -> None:
    """pull_request: a good change passes the compile check; the summary shows the DAG and the diff to main."""
    _branch(consumer, CHANGED_SOURCE, recompile=True)
    result = run_act(consumer, "pull_request", "kfp-pr.yml", event_json=PR_EVENT)
    assert result.returncode == 0, result.output[-4000:]
    assert "::error" not in result.output
    summary = "\n".join(line.split("Summary - ", 1)[-1] for line in result.output.splitlines())
    assert "Pipeline `hello-ci`" in summary
    assert "| + | step | `publish` | added |" in summary
    assert "| + | parameter | `channel` | STRING = \"ml\" |" in summary
    assert re.search(r"\| ~ \| step \| `report` \| image python:3.11-slim -> python:3.12-slim", summary)
    assert "graph TD" in summary and "-->" in summary


def test_validate_workflow_fails_with_a_located_annotation_on_a_broken_pipeline(consumer: Path,
                                                                                run_act: Any) -> None:
    """pull_request: a pipeline that does not compile fails the job with an error annotation at its line."""
    _branch(consumer, BROKEN_SOURCE, recompile=False)
    result = run_act(consumer, "pull_request", "kfp-pr.yml", event_json=PR_EVENT)
    assert result.returncode != 0
    annotations = re.findall(r"::error file=([^,]+),line=(\d+)", result.output)
    assert annotations, result.output[-4000:]
    files = {Path(f).name for f, _line in annotations}
    assert "hello.py" in files
    lines = {int(line) for f, line in annotations if f.endswith("hello.py")}
    assert 12 in lines, annotations
    assert re.search(r"::error file=pipelines/hello.py,line=12[^\n]*unexpected keyword argument \"nonsense\"",
                     result.output)
    assert "Traceback" not in result.output


IMAGE_SOURCE = '''
import os

from kfp import dsl

IMAGE = os.environ.get("KFP_CI_IMAGE", "python:3.11-slim")


@dsl.component(base_image=IMAGE)
def make_rows(rows: int) -> int:
    return rows * 2


@dsl.pipeline(name="hello-ci")
def hello_pipeline(rows: int = 3):
    make_rows(rows=rows)
'''

ROOT_ACTION_CALLER = '''
name: image handoff
on: workflow_dispatch
permissions: {}
jobs:
  deploy:
    runs-on: ubuntu-latest
    timeout-minutes: 10
    permissions:
      contents: read
    steps:
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2
        with:
          persist-credentials: false
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2
        with:
          repository: kfp-ci/kfp-ci
          path: .kfp-ci-action
          persist-credentials: false
      - id: kfp
        uses: ./.kfp-ci-action
        with:
          host: ${{ vars.KFP_HOST }}
          auth: token
          token: ${{ secrets.KFP_TOKEN }}
          image: ghcr.io/acme/trainer:0123abc
      - env:
          VERSION_ID: ${{ steps.kfp.outputs.version-id }}
          RUN_ID: ${{ steps.kfp.outputs.run-id }}
        run: printf 'root version-id=%s\\nroot run-id=%s\\n' "$VERSION_ID" "$RUN_ID"
'''


def test_root_action_compiles_sources_with_the_image_tag_in_kfp_ci_image(consumer: Path, run_act: Any,
                                                                         server: LocalServer) -> None:
    """`uses: owner/kfp-ci@v1` (root action.yml): the image input reaches the pipeline code as KFP_CI_IMAGE."""

    (consumer / "pipelines" / "hello.py").write_text(IMAGE_SOURCE, encoding="utf-8")
    (consumer / ".github" / "workflows" / "image.yml").write_text(ROOT_ACTION_CALLER, encoding="utf-8")
    git(consumer, "add", "-A")
    git(consumer, "commit", "-q", "-m", "image from the environment")
    result = run_act(consumer, "workflow_dispatch", "image.yml", variables={"KFP_HOST": server.url},
                     secrets={"KFP_TOKEN": TOKEN})
    assert result.returncode == 0, result.output[-4000:]
    printed = _printed(result.output, "root")
    assert printed.get("version-id"), result.output[-3000:]
    assert printed.get("run-id") == ""  # no run asked for: the output exists and is empty
    client = _client(server)
    [pipeline] = client.list_pipelines()
    version = client.get_pipeline_version(pipeline.id, printed["version-id"])
    images = {executor["container"]["image"]
              for executor in (version.pipeline_spec or {})["deploymentSpec"]["executors"].values()}
    assert images == {"ghcr.io/acme/trainer:0123abc"}
    assert TOKEN not in result.output
