"""Every method, in every API generation, sends requests that validate against the matching KFP swagger spec.

The fake (tests/client/fakes.py) validates each request with tests/kfp_api_spec.py and answers spec-shaped JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from kfp_ci.client import Client
from kfp_ci.errors import ApiError, NotFound, UsageError

from .fakes import SpecFake, make_client

V2_PIPELINE = {"pipeline_id": "p1", "name": "add-square", "display_name": "add-square",
               "created_at": "2026-08-01T10:00:00Z", "namespace": "team-a"}
V2_VERSION = {"pipeline_id": "p1", "pipeline_version_id": "v1", "name": "git-abc", "display_name": "git-abc",
              "created_at": "2026-08-01T10:00:01.123456789Z", "pipeline_spec": {"pipelineInfo": {"name": "x"}}}
V2_EXPERIMENT = {"experiment_id": "e1", "display_name": "ci", "namespace": "team-a", "storage_state": "AVAILABLE",
                 "created_at": "2026-08-01T10:00:00Z"}
V2_RUN = {"run_id": "r1", "display_name": "ci-run", "experiment_id": "e1", "state": "RUNNING",
          "pipeline_version_reference": {"pipeline_id": "p1", "pipeline_version_id": "v1"},
          "runtime_config": {"parameters": {"a": 3}}, "created_at": "2026-08-01T10:00:02Z",
          "run_details": {"task_details": [{"task_id": "t1", "display_name": "add", "state": "SUCCEEDED"}]}}
V2_RECURRING = {"recurring_run_id": "rr1", "display_name": "nightly", "experiment_id": "e1", "status": "ENABLED",
                "max_concurrency": "1", "no_catchup": True,
                "pipeline_version_reference": {"pipeline_id": "p1"},
                "trigger": {"cron_schedule": {"cron": "0 0 2 * * *"}}, "created_at": "2026-08-01T10:00:00Z"}

V1_PIPELINE = {"id": "p1", "name": "add-square", "created_at": "2026-08-01T10:00:00Z"}
V1_VERSION = {"id": "v1", "name": "git-abc", "created_at": "2026-08-01T10:00:00Z",
              "resource_references": [{"key": {"type": "PIPELINE", "id": "p1"}, "relationship": "OWNER"}]}
V1_EXPERIMENT = {"id": "e1", "name": "ci", "created_at": "2026-08-01T10:00:00Z",
                 "storage_state": "STORAGESTATE_AVAILABLE"}
V1_RUN = {"id": "r1", "name": "ci-run", "status": "Succeeded", "created_at": "2026-08-01T10:00:00Z",
          "pipeline_spec": {"parameters": [{"name": "a", "value": "3"}]},
          "resource_references": [{"key": {"type": "EXPERIMENT", "id": "e1"}, "relationship": "OWNER"},
                                  {"key": {"type": "PIPELINE_VERSION", "id": "v1"}, "relationship": "CREATOR"}]}
V1_JOB = {"id": "rr1", "name": "nightly", "enabled": True, "max_concurrency": "1",
          "trigger": {"periodic_schedule": {"interval_second": "3600"}},
          "resource_references": [{"key": {"type": "EXPERIMENT", "id": "e1"}, "relationship": "OWNER"}]}


def _before_214(obj: dict[str, Any], version: str) -> dict[str, Any]:
    """Before 2.14 pipelines and versions had only display_name."""
    old = tuple(int(x) for x in version.split(".")) < (2, 14)
    return {k: v for k, v in obj.items() if k != "name"} if old else obj


def v2_fake(spec: str, version: str) -> SpecFake:
    fake = SpecFake(spec, version)
    pipeline, pversion = _before_214(V2_PIPELINE, version), _before_214(V2_VERSION, version)
    fake.on("GET", "/apis/v2beta1/pipelines/names/{name}", pipeline)
    fake.on("GET", "/apis/v2beta1/pipelines", {"pipelines": [pipeline], "total_size": 1})
    fake.on("GET", "/apis/v2beta1/pipelines/{pipeline_id}", pipeline)
    fake.on("POST", "/apis/v2beta1/pipelines/upload", pipeline)
    fake.on("POST", "/apis/v2beta1/pipelines", pipeline)
    fake.on("POST", "/apis/v2beta1/pipelines/upload_version", pversion)
    fake.on("GET", "/apis/v2beta1/pipelines/{pipeline_id}/versions", {"pipeline_versions": [pversion]})
    fake.on("GET", "/apis/v2beta1/pipelines/{pipeline_id}/versions/{pipeline_version_id}", pversion)
    fake.on("GET", "/apis/v2beta1/experiments", {})
    fake.on("POST", "/apis/v2beta1/experiments", V2_EXPERIMENT)
    fake.on("GET", "/apis/v2beta1/experiments/{experiment_id}", V2_EXPERIMENT)
    fake.on("POST", "/apis/v2beta1/runs", V2_RUN)
    fake.on("GET", "/apis/v2beta1/runs/{run_id}", V2_RUN)
    fake.on("GET", "/apis/v2beta1/runs", {"runs": [V2_RUN], "total_size": 1})
    fake.on("POST", "/apis/v2beta1/recurringruns", V2_RECURRING)
    fake.on("GET", "/apis/v2beta1/recurringruns/{recurring_run_id}", V2_RECURRING)
    fake.on("GET", "/apis/v2beta1/recurringruns", {"recurringRuns": [V2_RECURRING], "total_size": 1})
    return fake


def v1_fake() -> SpecFake:
    fake = SpecFake("v1beta1-1.8.5", "1.8.5")
    fake.on("GET", "/apis/v1beta1/pipelines", {"pipelines": [V1_PIPELINE], "total_size": 1})
    fake.on("GET", "/apis/v1beta1/pipelines/{id}", V1_PIPELINE)
    fake.on("POST", "/apis/v1beta1/pipelines/upload", V1_PIPELINE)
    fake.on("POST", "/apis/v1beta1/pipelines/upload_version", V1_VERSION)
    fake.on("GET", "/apis/v1beta1/pipeline_versions", {"versions": [V1_VERSION], "total_size": 1})
    fake.on("GET", "/apis/v1beta1/pipeline_versions/{version_id}", V1_VERSION)
    fake.on("GET", "/apis/v1beta1/experiments", {})
    fake.on("POST", "/apis/v1beta1/experiments", V1_EXPERIMENT)
    fake.on("GET", "/apis/v1beta1/experiments/{id}", V1_EXPERIMENT)
    fake.on("POST", "/apis/v1beta1/runs", {"run": V1_RUN})
    fake.on("GET", "/apis/v1beta1/runs/{run_id}", {"run": V1_RUN})
    fake.on("GET", "/apis/v1beta1/runs", {"runs": [V1_RUN], "total_size": 1})
    fake.on("POST", "/apis/v1beta1/jobs", V1_JOB)
    fake.on("GET", "/apis/v1beta1/jobs/{id}", V1_JOB)
    fake.on("GET", "/apis/v1beta1/jobs", {"jobs": [V1_JOB], "total_size": 1})
    return fake


def exercise_everything(client: Client, package: Path, v1: bool) -> None:
    """Call every public method once, as a CI would."""
    assert client.get_kfp_healthz().api == ("v1beta1" if v1 else "v2beta1")
    assert client.get_pipeline_id("add-square") == "p1"
    assert client.get_pipeline("p1").name == "add-square"
    assert [p.pipeline_id for p in client.list_pipelines(sort_by="created_at desc")] == ["p1"]
    assert client.upload_pipeline(package, description="CI upload", display_name="Add square").pipeline_id == "p1"
    if v1:
        with pytest.raises(ApiError) as err:
            client.create_pipeline("empty")
        assert err.value.status == 501
    else:
        assert client.create_pipeline("add-square", description="CI", namespace="team-a").pipeline_id == "p1"
    version = client.upload_pipeline_version(package, "git-abc", pipeline_id="p1", description="commit abc",
                                             display_name="git abc")
    assert (version.pipeline_version_id, version.pipeline_id) == ("v1", "p1")
    version = client.upload_pipeline_version(package, "git-abc", pipeline_name="add-square")
    assert version.name == "git-abc"
    found = client.list_pipeline_versions("p1", filter=json.dumps(
        {"predicates": [{"operation": "EQUALS", "key": "name", "string_value": "git-abc"}]}), page_size=10)
    assert [v.name for v in found.pipeline_versions] == ["git-abc"]
    assert client.get_pipeline_version("p1", "v1").name == "git-abc"
    client.delete_pipeline_version("p1", "v1")
    experiment = client.create_experiment("ci", description="CI runs")
    assert experiment.experiment_id == "e1"
    assert client.get_experiment(experiment_id="e1").display_name == "ci"
    assert len(client.list_experiments()) == 0
    run = client.run_pipeline("e1", "ci-run", params={"a": 3, "flags": [1, 2], "on": True},
                              pipeline_id="p1", version_id="v1", service_account="pipeline-runner")
    assert run.run_id == "r1"
    if not v1:
        client.run_pipeline("e1", "ci-run", pipeline_package_path=package, params={"a": 3}, enable_caching=False)
    assert client.get_run("r1").experiment_id == "e1"
    assert [r.run_id for r in client.list_runs(experiment_id="e1", page_size=5)] == ["r1"]
    client.terminate_run("r1")
    recurring = client.create_recurring_run("e1", "nightly", description="CI", cron_expression="0 0 2 * * *",
                                            start_time="2026-01-01T00:00:00Z", no_catchup=True, params={"a": 1},
                                            pipeline_id="p1", version_id="v1")
    assert recurring.recurring_run_id == "rr1"
    client.create_recurring_run("e1", "hourly", interval_second=3600, pipeline_id="p1", version_id="v1",
                                enabled=False)
    assert client.get_recurring_run("rr1").enabled
    assert [r.recurring_run_id for r in client.list_recurring_runs(experiment_id="e1")] == ["rr1"]
    client.disable_recurring_run("rr1")
    client.enable_recurring_run("rr1")
    client.delete_recurring_run("rr1")


@pytest.mark.parametrize(("spec", "version"), [("v2beta1-2.17.0", "2.17.0"), ("v2beta1-2.5.0", "2.5.0")])
def test_every_v2_request_validates_against_the_spec(spec: str, version: str, package: Path) -> None:
    fake = v2_fake(spec, version)
    exercise_everything(make_client(fake, namespace="team-a"), package, v1=False)
    assert "POST /apis/v2beta1/runs/r1:terminate" in fake.calls()
    assert "POST /apis/v2beta1/recurringruns/rr1:disable" in fake.calls()
    uploads = [r for r in fake.requests if r.url.path.endswith("/upload")]
    params = dict(uploads[0].url.params)
    assert params["namespace"] == "team-a"
    # display_name exists only from 2.14 on: sent to 2.17, left out for 2.5 (strict spec check above too)
    assert ("display_name" in params) == (version == "2.17.0")


def test_every_v1_request_validates_against_the_spec(package: Path) -> None:
    fake = v1_fake()
    exercise_everything(make_client(fake), package, v1=True)
    assert "POST /apis/v1beta1/runs/r1/terminate" in fake.calls()
    assert "POST /apis/v1beta1/jobs/rr1/disable" in fake.calls()
    run_create = next(r for r in fake.requests if r.method == "POST" and r.url.path == "/apis/v1beta1/runs")
    body = json.loads(run_create.content)
    # v1 parameters are strings; lists JSON-encoded, booleans lower-case
    assert body["pipeline_spec"]["parameters"] == [{"name": "a", "value": "3"}, {"name": "flags", "value": "[1, 2]"},
                                                   {"name": "on", "value": "true"}]
    assert {"key": {"type": "PIPELINE_VERSION", "id": "v1"}, "relationship": "CREATOR"} in body["resource_references"]
    filters = [parse_qs(urlsplit(str(r.url)).query).get("filter", [""])[0] for r in fake.requests]
    assert any('"op":"EQUALS"' in f for f in filters)
    assert not any('"operation"' in f for f in filters)


def test_v2_filters_use_operation_and_a_name_with_plus_is_quoted_twice() -> None:
    fake = v2_fake("v2beta1-2.17.0", "2.17.0")
    fake.on("GET", "/apis/v2beta1/experiments", {"experiments": [{**V2_EXPERIMENT, "display_name": "a+b"}]})
    client = make_client(fake)
    assert client.create_experiment("a+b").display_name == "a+b"
    raw = parse_qs(urlsplit(str(fake.requests[-1].url)).query)["filter"][0]
    assert raw.startswith("%7B")  # the API server URL-decodes filters a second time
    assert "POST /apis/v2beta1/experiments" not in fake.calls()  # found: get-or-create did not create


def test_create_experiment_creates_when_absent() -> None:
    fake = v2_fake("v2beta1-2.17.0", "2.17.0")
    client = make_client(fake, namespace="team-a")
    client.create_experiment("ci")
    posted = next(r for r in fake.requests if r.method == "POST")
    assert json.loads(posted.content) == {"display_name": "ci", "namespace": "team-a"}


def test_get_pipeline_id_is_namespace_aware_and_none_when_absent() -> None:
    fake = v2_fake("v2beta1-2.17.0", "2.17.0")
    fake.on("GET", "/apis/v2beta1/pipelines/names/{name}",
            httpx.Response(404, json={"code": 5, "message": "not found"}))
    client = make_client(fake, namespace="team-a")
    assert client.get_pipeline_id("train") is None
    assert client.get_pipeline_id("train", namespace="team-b") is None
    namespaces = [r.url.params.get("namespace") for r in fake.requests if "/names/" in r.url.path]
    assert namespaces == ["team-a", "team-b"]


def test_upload_version_by_unknown_pipeline_name_is_not_found(package: Path) -> None:
    fake = v2_fake("v2beta1-2.17.0", "2.17.0")
    fake.on("GET", "/apis/v2beta1/pipelines/names/{name}", httpx.Response(404, json={"code": 5, "message": "nf"}))
    with pytest.raises(NotFound, match="pipeline 'nope' not found"):
        make_client(fake).upload_pipeline_version(package, "v1", pipeline_name="nope")


def test_always_latest_recurring_run_sends_no_version_on_25_and_later() -> None:
    fake = v2_fake("v2beta1-2.5.0", "2.5.0")
    make_client(fake).create_recurring_run("e1", "nightly", cron_expression="0 0 2 * * *", pipeline_id="p1")
    body = json.loads(next(r for r in fake.requests if r.method == "POST").content)
    assert body["pipeline_version_reference"] == {"pipeline_id": "p1"}
    assert body["mode"] == "ENABLE" and body["max_concurrency"] == "1"


@pytest.mark.parametrize(("spec", "version"), [("v2beta1-2.5.0", "2.4.0"), ("v1beta1-1.8.5", "1.8.5")])
def test_always_latest_is_refused_on_older_servers(spec: str, version: str) -> None:
    fake = SpecFake(spec, version)
    with pytest.raises(UsageError, match=r"needs KFP >= 2\.5"):
        make_client(fake).create_recurring_run("e1", "n", cron_expression="0 0 2 * * *", pipeline_id="p1")
    assert all(r.method == "GET" for r in fake.requests)


def test_recurring_run_argument_checks_send_nothing() -> None:
    fake = v2_fake("v2beta1-2.17.0", "2.17.0")
    client = make_client(fake)
    with pytest.raises(UsageError, match="exactly one"):
        client.create_recurring_run("e1", "n", pipeline_id="p1", version_id="v1")
    with pytest.raises(UsageError, match="max_concurrency"):
        client.create_recurring_run("e1", "n", interval_second=60, max_concurrency=11, pipeline_id="p1")
    assert fake.requests == []


def test_bad_package_paths_are_usage_errors(tmp_path: Path) -> None:
    client = make_client(v2_fake("v2beta1-2.17.0", "2.17.0"))
    with pytest.raises(UsageError, match="no such file"):
        client.upload_pipeline(tmp_path / "missing.yaml")
    (tmp_path / "p.txt").write_text("x")
    with pytest.raises(UsageError, match="must end in"):
        client.upload_pipeline(tmp_path / "p.txt")


def test_models_parse_int64_strings_datetimes_and_v1_states() -> None:
    fake = v1_fake()
    client = make_client(fake)
    run = client.get_run("r1")
    assert (run.state, run.experiment_id, run.pipeline_version_id, run.parameters) == (
        "SUCCEEDED", "e1", "v1", {"a": "3"})
    assert run.created_at is not None and run.created_at.tzinfo is not None
    job = client.get_recurring_run("rr1")
    assert (job.interval_second, job.max_concurrency, job.status) == (3600, 1, "ENABLED")
    v2 = make_client(v2_fake("v2beta1-2.17.0", "2.17.0"))
    version = v2.get_pipeline_version("p1", "v1")
    assert version.created_at is not None and version.created_at.microsecond == 123456
    assert [t.display_name for t in v2.get_run("r1").tasks] == ["add"]
