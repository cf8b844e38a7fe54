"""The REST semantics of the embedded server, over real loopback HTTP, validated against KFP's swagger specs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from kfp_api_spec import SpecValidator

from .conftest import Wire

V2 = "/apis/v2beta1"
V1 = "/apis/v1beta1"


def upload(url: str, path: Path, **query: str) -> httpx.Response:
    with path.open("rb") as fh:
        return httpx.post(f"{url}{V2}/pipelines/upload", params=query,
                          files={"uploadfile": (path.name, fh, "application/octet-stream")})


def upload_version(url: str, path: Path, api: str = V2, **query: str) -> httpx.Response:
    with path.open("rb") as fh:
        return httpx.post(f"{url}{api}/pipelines/upload_version", params=query,
                          files={"uploadfile": (path.name, fh, "application/octet-stream")})


def test_names_versions_conflicts_and_error_bodies(kfp_server: Callable[..., Any], pipelines: dict[str, Path],
                                                   wire: Wire) -> None:
    srv = kfp_server(execute=False)
    url = srv.url
    assert httpx.get(f"{url}{V2}/pipelines").json() == {}  # empty list: no key at all
    p = upload(url, pipelines["add-square"], name="train", display_name="Train model", description="d").json()
    assert (p["name"], p["display_name"], p["description"]) == ("train", "Train model", "d")
    versions = httpx.get(f"{url}{V2}/pipelines/{p['pipeline_id']}/versions").json()["pipeline_versions"]
    assert [v["name"] for v in versions] == ["train"]  # first version named after the pipeline
    assert versions[0]["pipeline_spec"]["pipelineInfo"]["name"] == "add-square"
    dup = upload(url, pipelines["add-square"], name="train")
    assert dup.status_code == 409 and set(dup.json()) == {"error_message", "error_details"}
    dup_v = upload_version(url, pipelines["add-square"], pipelineid=p["pipeline_id"], name="train")
    assert dup_v.status_code == 409
    v2 = upload_version(url, pipelines["add-square"], pipelineid=p["pipeline_id"], name="v2").json()
    assert v2["name"] == "v2" and srv.store.package_count() == 1  # packages stored once, by content hash
    assert httpx.get(f"{url}{V2}/pipelines/names/train").json()["pipeline_id"] == p["pipeline_id"]
    assert httpx.get(f"{url}{V2}/pipelines/names/nope").status_code == 404
    missing_id = upload_version(url, pipelines["add-square"], name="x")
    assert missing_id.status_code == 400 and "pipeline id" in missing_id.json()["error_message"]
    with pipelines["add-square"].open("rb") as fh:
        wrong = httpx.post(f"{url}{V2}/pipelines/upload", files={"uploadfile": ("p.txt", fh)})
    assert wrong.status_code == 400 and "Unexpected pipeline file format" in wrong.json()["error_message"]

    e = httpx.post(f"{url}{V2}/experiments", json={"display_name": "ci"}).json()
    again = httpx.post(f"{url}{V2}/experiments", json={"display_name": "ci"})
    assert again.status_code == 409
    body = again.json()
    assert set(body) == {"code", "message", "details"} and body["code"] == 6
    assert "already exists" in body["details"][0]["message"]
    unknown = httpx.post(f"{url}{V2}/experiments", json={"display_name": "x", "colour": "red"})
    assert unknown.status_code == 400 and "colour" in unknown.json()["message"]
    assert httpx.get(f"{url}/pipeline{V2}/experiments/{e['experiment_id']}").json()["display_name"] == "ci"
    patched = httpx.patch(f"{url}{V2}/pipelines/{p['pipeline_id']}", json={"display_name": "Trainer",
                                                                          "tags": {"team": "ml"}}).json()
    assert (patched["name"], patched["display_name"], patched["tags"]) == ("train", "Trainer", {"team": "ml"})
    vpatch = httpx.patch(f"{url}{V2}/pipelines/{p['pipeline_id']}/versions/{v2['pipeline_version_id']}",
                         json={"display_name": "Version two"})
    assert vpatch.json()["display_name"] == "Version two" and vpatch.json()["name"] == "v2"
    assert httpx.delete(f"{url}{V2}/pipelines/{p['pipeline_id']}").status_code == 400  # has versions
    assert httpx.delete(f"{url}{V2}/pipelines/{p['pipeline_id']}", params={"cascade": "true"}).json() == {}
    assert wire.validate("v2beta1-2.17.0") >= 15


def test_lists_filter_sort_paginate(kfp_server: Callable[..., Any], pipelines: dict[str, Path], wire: Wire) -> None:
    srv = kfp_server(execute=False)
    url = srv.url
    for name in ["b", "a", "c", "a-2"]:
        assert upload(url, pipelines["add-square"], name=name).status_code == 200
    names = [p["name"] for p in httpx.get(f"{url}{V2}/pipelines", params={"sort_by": "name desc"}).json()["pipelines"]]
    assert names == ["c", "b", "a-2", "a"]
    for op, key in [("EQUALS", "string_value"), (1, "stringValue")]:
        flt = json.dumps({"predicates": [{"operation": op, "key": "name", key: "a"}]})
        found = httpx.get(f"{url}{V2}/pipelines", params={"filter": flt}).json()
        assert [p["name"] for p in found["pipelines"]] == ["a"] and found["total_size"] == 1
    sub = json.dumps({"predicates": [{"operation": "IS_SUBSTRING", "key": "display_name", "string_value": "a"}]})
    assert httpx.get(f"{url}{V2}/pipelines", params={"filter": sub}).json()["total_size"] == 2
    v1_filter = json.dumps({"predicates": [{"op": "EQUALS", "key": "name", "string_value": "c"}]})
    assert [p["name"] for p in httpx.get(f"{url}{V1}/pipelines", params={"filter": v1_filter}).json()["pipelines"]] \
        == ["c"]
    assert httpx.get(f"{url}{V2}/pipelines", params={"filter": v1_filter}).status_code == 400  # 'op' is v1 only
    assert httpx.get(f"{url}{V2}/pipelines", params={"sort_by": "colour"}).status_code == 400
    seen: list[str] = []
    params = {"page_size": "3", "sort_by": "name"}
    while True:
        page = httpx.get(f"{url}{V2}/pipelines", params=params).json()
        seen += [p["name"] for p in page["pipelines"]]
        assert page["total_size"] == 4
        if "next_page_token" not in page:
            break
        params = {"page_token": page["next_page_token"], "page_size": "3"}
    assert seen == ["a", "a-2", "b", "c"]
    assert wire.validate("v2beta1-2.17.0", "v1beta1-2.17.0") >= 10


def test_runs_and_recurring_runs_int64_and_cron(kfp_server: Callable[..., Any], pipelines: dict[str, Path],
                                                wire: Wire) -> None:
    srv = kfp_server(execute=False, run_delay=30.0)
    url = srv.url
    p = upload(url, pipelines["add-square"], name="p").json()
    e = httpx.post(f"{url}{V2}/experiments", json={"display_name": "e"}).json()
    ref = {"pipeline_id": p["pipeline_id"]}
    run = httpx.post(f"{url}{V2}/runs", json={"display_name": "r", "experiment_id": e["experiment_id"],
                                              "pipeline_version_reference": ref,
                                              "runtime_config": {"parameters": {"a": 5}}}).json()
    assert run["state"] in ("PENDING", "RUNNING") and run["pipeline_version_reference"]["pipeline_version_id"]
    assert httpx.post(f"{url}{V2}/runs/{run['run_id']}:terminate").json() == {}
    got = httpx.get(f"{url}{V2}/runs/{run['run_id']}").json()
    assert got["state"] in ("CANCELING", "CANCELED")
    body = {"display_name": "nightly", "experiment_id": e["experiment_id"], "pipeline_version_reference": ref,
            "trigger": {"cron_schedule": {"cron": "0 0 2 * * *"}}, "max_concurrency": "2", "mode": "ENABLE"}
    rec = httpx.post(f"{url}{V2}/recurringruns", json=body).json()
    assert rec["max_concurrency"] == "2" and rec["status"] == "ENABLED"
    assert "pipeline_version_id" not in rec["pipeline_version_reference"]  # always-latest kept as such
    five = httpx.post(f"{url}{V2}/recurringruns", json={**body, "display_name": "five",
                                                         "trigger": {"cron_schedule": {"cron": "0 2 * * *"}}})
    assert five.status_code == 200  # robfig v1 accepts 5 fields (seconds first, no day-of-week)
    for cron in ["0 2 * *", "61 * * * * *", "@sometimes"]:
        bad = httpx.post(f"{url}{V2}/recurringruns", json={**body, "trigger": {"cron_schedule": {"cron": cron}}})
        assert bad.status_code == 400 and "cron" in bad.json()["message"], cron
    periodic = httpx.post(f"{url}{V2}/recurringruns", json={
        **body, "display_name": "p", "trigger": {"periodic_schedule": {"interval_second": 3600}}}).json()
    assert periodic["trigger"]["periodic_schedule"]["interval_second"] == "3600"
    assert httpx.post(f"{url}{V2}/recurringruns", json={**body, "max_concurrency": 11}).status_code == 400
    listed = httpx.get(f"{url}{V2}/recurringruns").json()
    assert len(listed["recurringRuns"]) == 3 and listed["total_size"] == 3
    assert httpx.post(f"{url}{V2}/recurringruns/{rec['recurring_run_id']}:disable").json() == {}
    assert httpx.get(f"{url}{V2}/recurringruns/{rec['recurring_run_id']}").json()["status"] == "DISABLED"
    assert wire.validate("v2beta1-2.17.0") >= 12


def test_generation_2_5_shapes(kfp_server: Callable[..., Any], pipelines: dict[str, Path], wire: Wire) -> None:
    srv = kfp_server(compat="2.5", execute=False)
    health = httpx.get(f"{srv.url}{V2}/healthz")
    assert health.headers["content-type"].startswith("text/plain") and json.loads(health.text)["tag_name"] == "2.5.0"
    p = upload(srv.url, pipelines["add-square"], name="p").json()
    assert "name" not in p and p["display_name"] == "p"  # no name/display_name split before 2.14
    httpx.post(f"{srv.url}{V2}/experiments", json={"display_name": "e"})
    dup = httpx.post(f"{srv.url}{V2}/experiments", json={"display_name": "e"})
    assert dup.status_code == 409 and set(dup.json()) == {"error", "code", "message", "details"}
    assert wire.validate("v2beta1-2.5.0") >= 3


def test_generation_1_8_is_v1_only(kfp_server: Callable[..., Any], pipelines: dict[str, Path], wire: Wire) -> None:
    srv = kfp_server(compat="1.8", execute=False)
    assert httpx.get(f"{srv.url}{V2}/healthz").status_code == 404
    health = httpx.get(f"{srv.url}{V1}/healthz")
    assert json.loads(health.text) == {"commit_sha": json.loads(health.text)["commit_sha"], "tag_name": "1.8.5",
                                       "multi_user": False}
    with pipelines["add-square"].open("rb") as fh:
        p = httpx.post(f"{srv.url}{V1}/pipelines/upload", params={"name": "p"},
                       files={"uploadfile": ("p.yaml", fh)}).json()
    assert p["default_version"]["name"] == "p"
    with pipelines["add-square"].open("rb") as fh:
        dup = httpx.post(f"{srv.url}{V1}/pipelines/upload", params={"name": "p"}, files={"uploadfile": ("p.yaml", fh)})
    assert dup.status_code == 500  # KFP <= 2.0 answered duplicates with 500
    e = httpx.post(f"{srv.url}{V1}/experiments", json={"name": "e"}).json()
    refs = [{"key": {"type": "EXPERIMENT", "id": e["id"]}, "relationship": "OWNER"},
            {"key": {"type": "PIPELINE_VERSION", "id": p["default_version"]["id"]}, "relationship": "CREATOR"}]
    run = httpx.post(f"{srv.url}{V1}/runs", json={"name": "r", "resource_references": refs,
                                                  "pipeline_spec": {"parameters": [{"name": "a", "value": "3"}]}})
    run_id = run.json()["run"]["id"]
    metrics = {"metrics": [{"name": "accuracy", "node_id": "train", "number_value": 0.91, "format": "RAW"}]}
    report = httpx.post(f"{srv.url}{V1}/runs/{run_id}:reportMetrics", json=metrics).json()
    assert report["results"][0]["status"] == "OK"
    got = httpx.get(f"{srv.url}{V1}/runs/{run_id}").json()["run"]
    assert got["metrics"] == [{"name": "accuracy", "node_id": "train", "number_value": 0.91, "format": "RAW"}]
    bad = httpx.post(f"{srv.url}{V1}/experiments", json={"name": "e"})
    assert bad.status_code == 409 and bad.json()["details"][0]["@type"] == "type.googleapis.com/api.Error"
    assert wire.validate("v1beta1-1.8.5") >= 5


def test_multi_user_namespaces_and_rbac(kfp_server: Callable[..., Any], pipelines: dict[str, Path],
                                        wire: Wire) -> None:
    srv = kfp_server(execute=False, multi_user=True, profiles={"alice@x.org": ("team-a",), "bob@x.org": ("team-b",)})
    alice = {"kubeflow-userid": "alice@x.org"}
    bob = {"kubeflow-userid": "bob@x.org"}
    assert httpx.get(f"{srv.url}{V2}/healthz").json()["multi_user"] is True
    no_ns = httpx.post(f"{srv.url}{V2}/experiments", json={"display_name": "e"}, headers=alice)
    assert no_ns.status_code == 400 and "namespace" in no_ns.json()["message"]
    e = httpx.post(f"{srv.url}{V2}/experiments", json={"display_name": "e", "namespace": "team-a"}, headers=alice)
    assert e.status_code == 200 and e.json()["namespace"] == "team-a"
    denied = httpx.get(f"{srv.url}{V2}/experiments/{e.json()['experiment_id']}", headers=bob)
    assert denied.status_code == 403 and denied.text == "RBAC: access denied"
    assert httpx.get(f"{srv.url}{V2}/experiments", params={"namespace": "team-a"}, headers=bob).status_code == 403
    assert httpx.get(f"{srv.url}{V2}/experiments", headers=alice).status_code == 400  # namespace required
    listed = httpx.get(f"{srv.url}{V2}/experiments", params={"namespace": "team-a"}, headers=alice).json()
    assert [x["display_name"] for x in listed["experiments"]] == ["e"]
    default = kfp_server(execute=False, multi_user=True)
    ok = httpx.post(f"{default.url}{V2}/experiments", json={"display_name": "e", "namespace":
                    "kubeflow-user-example-com"}, headers={"kubeflow-userid": "user@example.com"})
    assert ok.status_code == 200
    assert wire.validate("v2beta1-2.17.0") >= 5


def test_faults(kfp_server: Callable[..., Any]) -> None:
    srv = kfp_server(execute=False, faults=True)
    url = srv.url
    r = httpx.post(f"{url}/_kfp_ci/faults", json={"match": "/experiments", "method": "GET", "count": 2,
                                                  "action": "status", "status": 503, "body": "upstream down"})
    assert r.status_code == 200
    assert [httpx.get(f"{url}{V2}/experiments").status_code for _ in range(3)] == [503, 503, 200]
    srv.add_fault(match="/experiments$", method="POST", count=1, action="reset_after")
    with pytest.raises(httpx.HTTPError):
        httpx.post(f"{url}{V2}/experiments", json={"display_name": "e"})
    assert httpx.get(f"{url}{V2}/experiments").json()["total_size"] == 1  # the side effect happened
    srv.add_fault(match="/experiments$", method="POST", count=1, action="reset")
    with pytest.raises(httpx.HTTPError):
        httpx.post(f"{url}{V2}/experiments", json={"display_name": "f"})
    assert httpx.get(f"{url}{V2}/experiments").json()["total_size"] == 1  # not handled
    srv.add_fault(match="healthz", count=5, action="status", status=500)
    assert httpx.delete(f"{url}/_kfp_ci/faults").status_code == 200
    assert httpx.get(f"{url}{V2}/healthz").status_code == 200
    srv.add_fault(match="healthz", count=1, action="delay", seconds=0.3)
    assert httpx.get(f"{url}{V2}/healthz").elapsed.total_seconds() >= 0.3
    assert httpx.post(f"{url}/_kfp_ci/faults", json={"action": "expire_sessions"}).status_code == 200
    plain = kfp_server(execute=False)
    assert httpx.post(f"{plain.url}/_kfp_ci/faults", json={}).status_code == 404  # only with --faults


def test_restart_keeps_data_and_fails_cut_runs(kfp_server: Callable[..., Any], pipelines: dict[str, Path],
                                               tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = kfp_server(execute=False, run_delay=60.0, data_dir=data)
    p = upload(first.url, pipelines["add-square"], name="p").json()
    run = httpx.post(f"{first.url}{V2}/runs", json={"display_name": "r", "pipeline_version_reference": {
        "pipeline_id": p["pipeline_id"]}}).json()
    first.stop()
    second = kfp_server(execute=False, data_dir=data)
    assert httpx.get(f"{second.url}{V2}/pipelines/{p['pipeline_id']}").json()["name"] == "p"
    got = httpx.get(f"{second.url}{V2}/runs/{run['run_id']}").json()
    assert got["state"] == "FAILED" and "restart" in got["error"]["message"]
    SpecValidator("v2beta1-2.17.0").validate_response("GET", f"{V2}/runs/x", 200, got)


def test_multi_user_v1beta1_uses_namespace_references(kfp_server: Callable[..., Any], wire: Wire) -> None:
    srv = kfp_server(execute=False, multi_user=True, profiles={"alice@x.org": ("team-a",)})
    alice = {"kubeflow-userid": "alice@x.org"}
    ns_ref = [{"key": {"type": "NAMESPACE", "id": "team-a"}, "relationship": "OWNER"}]
    e = httpx.post(f"{srv.url}{V1}/experiments", json={"name": "e", "resource_references": ns_ref}, headers=alice)
    assert e.status_code == 200 and e.json()["resource_references"] == ns_ref
    query = {"resource_reference_key.type": "NAMESPACE", "resource_reference_key.id": "team-a"}
    listed = httpx.get(f"{srv.url}{V1}/experiments", params=query, headers=alice).json()
    assert [x["name"] for x in listed["experiments"]] == ["e"]
    other = {"resource_reference_key.type": "NAMESPACE", "resource_reference_key.id": "team-b"}
    denied = httpx.get(f"{srv.url}{V1}/experiments", params=other, headers=alice)
    assert denied.status_code == 403 and denied.text == "RBAC: access denied"
    anonymous = httpx.get(f"{srv.url}{V1}/experiments", params=query)
    assert anonymous.status_code == 401
    single = kfp_server(execute=False)
    refused = httpx.post(f"{single.url}{V1}/experiments", json={"name": "e", "resource_references": ns_ref})
    assert refused.status_code == 400 and "single-user mode" in refused.json()["message"]
    assert wire.validate("v1beta1-2.17.0") >= 3


def test_an_idle_connection_outlives_a_clients_5_second_poll(kfp_server: Callable[..., Any]) -> None:
    """kfp.Client polls a run every 5 s on a pooled connection: the server must not close it at 5 s idle (a
    request sent as it closes gets 'Remote end closed connection without response')."""
    import socket

    srv = kfp_server(execute=False)
    request = (f"GET /apis/v2beta1/healthz HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as conn:
        for attempt in range(2):
            conn.sendall(request)
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                chunk = conn.recv(65536)
                assert chunk, f"the server closed the connection (request {attempt + 1})"
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200")
            if attempt == 0:
                time.sleep(5.5)
