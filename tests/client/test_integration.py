"""kfp_ci.client.Client against the embedded server (real HTTP over loopback) in each API generation.

Every request the client sends is captured with an httpx event hook and validated against the swagger spec of
that generation. Fault tests use the server's fault injection; the login-page contrast runs the real kfp.Client.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kfp_api_spec import SpecValidator

from kfp_ci.client import BearerToken, Client, RetryPolicy, TokenFile
from kfp_ci.errors import ApiError, AuthError, Conflict, NotFound, PermissionDenied, Unauthenticated, UsageError

SPECS = {"2.17": "v2beta1-2.17.0", "2.5": "v2beta1-2.5.0", "1.8": "v1beta1-1.8.5"}
LOGIN_HTML = ('<!DOCTYPE html><html><head><title>Dex</title></head><body><form method="post" action="/dex/auth/local">'
              '<input name="login"><input type="password" name="password"><button>Login</button></form></body></html>')


@pytest.fixture(scope="session")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pipeline compiled with the real kfp compiler."""
    from kfp import compiler

    from .pipelines_src import client_it

    path = tmp_path_factory.mktemp("client") / "client-it.yaml"
    compiler.Compiler().compile(client_it, str(path))
    return path


class Recorder:
    """Captures every request (an httpx request hook) and validates it against one spec."""

    def __init__(self, spec_name: str) -> None:
        self.spec = SpecValidator(spec_name)
        self.seen: list[str] = []

    def __call__(self, request: httpx.Request) -> None:
        path = request.url.path
        self.seen.append(f"{request.method} {path}")
        if path.startswith("/_kfp_ci"):
            return
        spec = self.spec
        if path.endswith("/apis/v2beta1/healthz") and spec.name.startswith("v1beta1"):
            spec = SpecValidator("v2beta1-2.17.0")  # the generation probe: KFP 1.x answers it 404
        body: Any = None
        fields: list[str] = []
        content = request.read()
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            fields = re.findall(r'form-data; name="([^"]+)"', content.decode("utf-8", "replace"))
        elif content:
            body = json.loads(content)
        if body is not None and self.spec.name == "v2beta1-2.5.0":
            body = _values_as_objects(body)
        spec.validate_request(request.method, path, list(request.url.params.multi_items()), body,
                              form_fields=fields)


def _values_as_objects(body: Any) -> Any:
    """The 2.5.0 swagger types google.protobuf.Value (run parameters) as ``object`` (a generator artifact)."""
    if isinstance(body, dict):
        out = {k: _values_as_objects(v) for k, v in body.items()}
        config = body.get("runtime_config")
        if isinstance(config, dict) and isinstance(config.get("parameters"), dict):
            out["runtime_config"] = {**config, "parameters": {}}
        return out
    return body


@pytest.fixture
def connect(kfp_server: Any) -> Iterator[Any]:
    """``connect(compat=..., **options) -> (server, client, recorder)``."""
    clients: list[Client] = []

    def make(compat: str = "2.17", namespace: str | None = None, user: str | None = None,
             **options: Any) -> tuple[Any, Client, Recorder]:
        srv = kfp_server(compat=compat, execute=False, **options)
        recorder = Recorder(SPECS[compat])
        hooks: dict[str, list[Any]] = {"request": [recorder]}
        if user:
            def identify(request: httpx.Request) -> None:
                request.headers["kubeflow-userid"] = user

            hooks["request"].insert(0, identify)
        client = Client(srv.url, namespace=namespace, event_hooks=hooks, retry=RetryPolicy(attempts=4))
        clients.append(client)
        return srv, client, recorder

    yield make
    for client in clients:
        client.close()


@pytest.mark.parametrize("compat", ["2.17", "2.5", "1.8"])
def test_every_method_in_every_generation(connect: Any, compiled: Path, compat: str) -> None:
    srv, client, recorder = connect(compat)
    info = client.get_kfp_healthz()
    assert info.api == ("v1beta1" if compat == "1.8" else "v2beta1")
    assert info.version.startswith(compat)

    pipeline = client.upload_pipeline(compiled, description="CI upload")
    assert pipeline.name == "client-it" and pipeline.pipeline_id
    assert client.get_pipeline_id("client-it") == pipeline.pipeline_id
    assert client.get_pipeline_id("no-such-pipeline") is None
    assert client.get_pipeline(pipeline.pipeline_id).name == "client-it"
    assert pipeline.pipeline_id in [p.pipeline_id for p in client.list_pipelines()]
    with pytest.raises(Conflict, match="pipeline 'client-it' already exists"):
        client.upload_pipeline(compiled)

    if compat != "1.8":
        empty = client.create_pipeline("empty-first", description="no version yet")
        first = client.upload_pipeline_version(compiled, "git-000", pipeline_id=empty.pipeline_id)
        assert client.get_pipeline_id("empty-first") == empty.pipeline_id and first.name == "git-000"
        assert [v.name for v in client.list_pipeline_versions(empty.pipeline_id)] == ["git-000"]

    v1 = client.upload_pipeline_version(compiled, "git-aaa", pipeline_id=pipeline.pipeline_id, description="a")
    v2 = client.upload_pipeline_version(compiled, "git-bbb", pipeline_name="client-it")
    assert (v1.name, v2.name) == ("git-aaa", "git-bbb")
    with pytest.raises(Conflict, match="already has a version named 'git-aaa'"):
        client.upload_pipeline_version(compiled, "git-aaa", pipeline_id=pipeline.pipeline_id)
    names = {v.name for v in client.list_pipeline_versions(pipeline.pipeline_id)}
    assert {"git-aaa", "git-bbb"} <= names
    found = client.list_pipeline_versions(pipeline.pipeline_id, filter=json.dumps(
        {"predicates": [{"operation": "EQUALS", "key": "name", "string_value": "git-bbb"}]}))
    assert [v.pipeline_version_id for v in found] == [v2.pipeline_version_id]
    assert client.get_pipeline_version(pipeline.pipeline_id, v1.pipeline_version_id).name == "git-aaa"

    experiment = client.create_experiment("ci", description="CI runs")
    assert client.create_experiment("ci").experiment_id == experiment.experiment_id  # get-or-create
    assert client.get_experiment(experiment_id=experiment.experiment_id).display_name == "ci"
    assert client.get_experiment(experiment_name="ci").experiment_id == experiment.experiment_id
    with pytest.raises(NotFound):
        client.get_experiment(experiment_name="nope")
    assert experiment.experiment_id in [e.experiment_id for e in client.list_experiments()]

    run = client.run_pipeline(experiment.experiment_id, "ci-run", params={"a": 3.0, "b": 4.5},
                              pipeline_id=pipeline.pipeline_id, version_id=v2.pipeline_version_id)
    assert run.run_id and run.display_name == "ci-run"
    got = client.get_run(run.run_id)
    assert got.experiment_id == experiment.experiment_id and got.created_at is not None
    assert run.run_id in [r.run_id for r in client.list_runs(experiment_id=experiment.experiment_id)]
    client.terminate_run(run.run_id)
    done = client.wait_for_run_completion(run.run_id, timeout=30, sleep_duration=0.05)
    assert done.state in ("CANCELED", "FAILED")  # v1 reports a terminated run as Failed

    recurring = client.create_recurring_run(experiment.experiment_id, "nightly", cron_expression="0 0 2 * * *",
                                            params={"a": 1.0}, pipeline_id=pipeline.pipeline_id,
                                            version_id=v1.pipeline_version_id, no_catchup=True)
    assert recurring.enabled and recurring.cron == "0 0 2 * * *"
    client.disable_recurring_run(recurring.recurring_run_id)
    assert not client.get_recurring_run(recurring.recurring_run_id).enabled
    client.enable_recurring_run(recurring.recurring_run_id)
    assert client.get_recurring_run(recurring.recurring_run_id).enabled
    listed = client.list_recurring_runs(experiment_id=experiment.experiment_id)
    assert [r.recurring_run_id for r in listed] == [recurring.recurring_run_id]
    if compat == "1.8":
        with pytest.raises(UsageError, match="needs KFP"):
            client.create_recurring_run(experiment.experiment_id, "latest", interval_second=3600,
                                        pipeline_id=pipeline.pipeline_id)
    else:
        latest = client.create_recurring_run(experiment.experiment_id, "latest", interval_second=3600,
                                             pipeline_id=pipeline.pipeline_id, enabled=False)
        assert latest.interval_second == 3600 and latest.pipeline_version_id is None
        client.delete_recurring_run(latest.recurring_run_id)
    client.delete_recurring_run(recurring.recurring_run_id)
    with pytest.raises(NotFound):
        client.get_recurring_run(recurring.recurring_run_id)

    client.delete_pipeline_version(pipeline.pipeline_id, v1.pipeline_version_id)
    with pytest.raises(NotFound):
        client.get_pipeline_version(pipeline.pipeline_id, v1.pipeline_version_id)
    assert client.request_count == len(recorder.seen)
    assert srv is not None


def test_multi_user_namespaces(connect: Any, compiled: Path) -> None:
    _, client, _ = connect("2.17", namespace="team-a", user="a@example.com", multi_user=True,
                           profiles={"a@example.com": ("team-a",)})
    assert client.server.multi_user
    pipeline = client.upload_pipeline(compiled)
    assert pipeline.namespace == "team-a"
    assert client.get_pipeline_id("client-it") == pipeline.pipeline_id
    assert client.get_pipeline_id("client-it", namespace="") is None  # not shared
    experiment = client.create_experiment("ci")
    assert experiment.namespace == "team-a"
    with pytest.raises(PermissionDenied, match="RBAC: access denied"):
        client.list_pipelines(namespace="team-b")
    _, shared, _ = connect("2.17", user="a@example.com", multi_user=True)
    with pytest.raises(ApiError, match="pass --namespace"):
        shared.create_experiment("ci")


def test_bearer_token_and_token_file_against_token_auth(kfp_server: Any, compiled: Path, tmp_path: Path) -> None:
    srv = kfp_server(compat="2.17", execute=False, multi_user=True, auth="token",
                     tokens={"tok-alice-123456": "alice@example.com", "tok-bob-1234567": "bob@example.com"},
                     profiles={"alice@example.com": ("team-a",), "bob@example.com": ("team-b",)})
    with Client(srv.url, namespace="team-a", auth=BearerToken("tok-alice-123456")) as alice:
        assert alice.server.multi_user
        pipeline = alice.upload_pipeline(compiled)
    token = tmp_path / "token"
    token.write_text("tok-bob-1234567\n")
    with Client(srv.url, namespace="team-b", auth=TokenFile(token)) as bob:
        assert bob.get_pipeline_id("client-it") is None  # alice's pipeline is in team-a
        token.write_text("tok-alice-123456")  # the projected token rotated: re-read on the next request
        assert bob.get_pipeline_id("client-it", namespace="team-a") == pipeline.pipeline_id
        token.write_text("tok-wrong-0000000")
        with pytest.raises(Unauthenticated) as err:
            bob.list_pipelines()
    assert "HTTP 401 Unauthorized" in str(err.value) and "tok-wrong-0000000" not in str(err.value)
    assert err.value.exit_code == 3


# ------------------------------------------------------------------------------------------------ faults
def test_503_bursts_and_resets_on_gets_are_survived(connect: Any, compiled: Path) -> None:
    srv, client, recorder = connect("2.17", faults=True)
    pipeline = client.upload_pipeline(compiled)
    srv.add_fault(match=r"/pipelines/[^/]+$", method="GET", count=2, action="status", status=503,
                  body="upstream connect error", content_type="text/plain")
    assert client.get_pipeline(pipeline.pipeline_id).name == "client-it"
    srv.add_fault(match=r"/pipelines/[^/]+$", method="GET", count=2, action="reset")
    assert client.get_pipeline(pipeline.pipeline_id).name == "client-it"
    gets = [s for s in recorder.seen if s.startswith("GET") and s.endswith(pipeline.pipeline_id)]
    assert len(gets) == 6


def test_reset_after_an_upload_leaves_exactly_one_version(connect: Any, compiled: Path) -> None:
    srv, client, recorder = connect("2.17", faults=True)
    pipeline = client.upload_pipeline(compiled)
    srv.add_fault(match=r"/pipelines/upload_version", method="POST", count=1, action="reset_after")
    version = client.upload_pipeline_version(compiled, "git-ccc", pipeline_id=pipeline.pipeline_id)
    assert version.name == "git-ccc"
    versions = [v for v in client.list_pipeline_versions(pipeline.pipeline_id) if v.name == "git-ccc"]
    assert len(versions) == 1 and versions[0].pipeline_version_id == version.pipeline_version_id
    assert sum(1 for s in recorder.seen if s.endswith("/upload_version")) == 1  # looked up, never re-sent


def test_a_read_timeout_on_an_upload_still_leaves_exactly_one_version(kfp_server: Any, compiled: Path) -> None:
    """The server is slow (delay, then it stores the upload): the client times out, looks the version up, finds
    nothing yet and sends again; the late first request then meets the name and fails on the server side."""
    import time

    srv = kfp_server(compat="2.17", execute=False, faults=True)
    seen: list[str] = []
    hooks = {"request": [lambda r: seen.append(f"{r.method} {r.url.path}")]}
    with Client(srv.url, timeout=0.3, retry=RetryPolicy(attempts=3), event_hooks=hooks) as client:
        pipeline = client.upload_pipeline(compiled)
        srv.add_fault(match=r"/pipelines/upload_version", method="POST", count=1, action="delay", seconds=0.8)
        version = client.upload_pipeline_version(compiled, "git-ddd", pipeline_id=pipeline.pipeline_id)
        time.sleep(1.0)  # let the delayed first upload finish on the server
        versions = [v for v in client.list_pipeline_versions(pipeline.pipeline_id) if v.name == "git-ddd"]
    assert [v.pipeline_version_id for v in versions] == [version.pipeline_version_id]
    uploads = [i for i, call in enumerate(seen) if call.endswith("/upload_version")]
    assert len(uploads) == 2 and seen[uploads[0] + 1].startswith("GET ")  # looked up before sending again


def test_login_page_with_200_raises_here_while_kfp_client_returns_nones(connect: Any) -> None:
    srv, client, _ = connect("2.17", faults=True)
    srv.add_fault(match=".*", method=None, count=1000, action="status", status=200, body=LOGIN_HTML,
                  content_type="text/html; charset=utf-8")
    with pytest.raises(AuthError) as err:
        client.list_pipelines()
    assert "got a login page: the session is missing or expired" in str(err.value)
    assert err.value.exit_code == 3

    import kfp

    peer = kfp.Client(host=srv.url)  # silently "healthy"
    listed = peer.list_pipelines()
    assert listed.pipelines is None and listed.total_size is None and listed.next_page_token is None
    healthz = peer.get_kfp_healthz()
    assert healthz.multi_user is None
    srv.clear_faults()
