"""Acceptance: the real kfp.Client (kfp 2.x) against the embedded server over a loopback socket."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import Wire


def _client(url: str) -> Any:
    import kfp

    return kfp.Client(host=url)


@pytest.mark.slow
def test_kfp_client_deploys_runs_and_schedules(kfp_server: Callable[..., Any], pipelines: dict[str, Path],
                                               wire: Wire) -> None:
    srv = kfp_server(execute=True)
    client = _client(srv.url + "/pipeline")
    pipeline = client.upload_pipeline(str(pipelines["add-square"]), pipeline_name="add-square")
    versions = client.list_pipeline_versions(pipeline.pipeline_id).pipeline_versions
    assert [v.display_name for v in versions] == ["add-square"]  # first upload: a version named after it
    version = client.upload_pipeline_version(str(pipelines["add-square"]), "v2", pipeline_id=pipeline.pipeline_id)
    assert client.get_pipeline_id("add-square") == pipeline.pipeline_id
    experiment = client.create_experiment("ci")
    assert client.create_experiment("ci").experiment_id == experiment.experiment_id  # get-or-create

    ok = client.run_pipeline(experiment.experiment_id, "ok", pipeline_id=pipeline.pipeline_id,
                             version_id=version.pipeline_version_id, params={"a": 2.0, "b": 3.0})
    failing = client.create_run_from_pipeline_package(str(pipelines["always-fails"]), arguments={"message": "nope"},
                                                      run_name="bad", experiment_id=experiment.experiment_id)
    done = client.wait_for_run_completion(ok.run_id, timeout=120, sleep_duration=0.3)
    assert done.state == "SUCCEEDED", done.error
    tasks = {t.display_name: t.state for t in done.run_details.task_details}
    assert tasks == {"add": "SUCCEEDED", "square": "SUCCEEDED"}
    assert [h.state for h in done.state_history] == ["PENDING", "RUNNING", "SUCCEEDED"]
    assert done.finished_at is not None
    bad = client.wait_for_run_completion(failing.run_id, timeout=120, sleep_duration=0.3)
    assert bad.state == "FAILED"
    assert "fail" in bad.error.message and "nope" in (srv.store.data_dir / "runs" / failing.run_id /
                                                      "log.txt").read_text()
    outputs = {(a["task"], a.get("parameters", {}).get("Output")) for a in srv.store.run_artifacts(ok.run_id)}
    assert ("square", 25.0) in outputs

    recurring = client.create_recurring_run(experiment.experiment_id, "nightly", cron_expression="0 0 2 * * *",
                                            pipeline_id=pipeline.pipeline_id, version_id=version.pipeline_version_id,
                                            max_concurrency=1, no_catchup=True)
    assert client.get_recurring_run(recurring.recurring_run_id).status == "ENABLED"
    client.disable_recurring_run(recurring.recurring_run_id)
    assert client.get_recurring_run(recurring.recurring_run_id).status == "DISABLED"
    assert [r.recurring_run_id for r in client.list_recurring_runs().recurring_runs] == [recurring.recurring_run_id]
    client.delete_recurring_run(recurring.recurring_run_id)
    assert not client.list_recurring_runs().recurring_runs
    assert wire.validate("v2beta1-2.17.0") > 20


@pytest.mark.parametrize("compat", ["2.17", "2.5"])
def test_kfp_client_errors_and_names(kfp_server: Callable[..., Any], pipelines: dict[str, Path], wire: Wire,
                                     compat: str) -> None:
    from kfp_server_api.exceptions import ApiException

    srv = kfp_server(execute=False, compat=compat)
    client = _client(srv.url)
    pipeline = client.upload_pipeline(str(pipelines["add-square"]), pipeline_name="add-square")
    with pytest.raises(ApiException) as dup:
        client.upload_pipeline(str(pipelines["add-square"]), pipeline_name="add-square")
    assert dup.value.status == 409
    with pytest.raises(ApiException) as dup_version:
        client.upload_pipeline_version(str(pipelines["add-square"]), "add-square", pipeline_id=pipeline.pipeline_id)
    assert dup_version.value.status == 409
    client.create_experiment("e")
    with pytest.raises(ApiException) as missing:
        client.get_run("no-such-run")
    assert missing.value.status == 404
    run = client.run_pipeline(client.create_experiment("e").experiment_id, "r", pipeline_id=pipeline.pipeline_id,
                              version_id=client.list_pipeline_versions(pipeline.pipeline_id)
                              .pipeline_versions[0].pipeline_version_id)
    assert client.wait_for_run_completion(run.run_id, timeout=30, sleep_duration=0.2).state == "SUCCEEDED"
    assert wire.validate(f"v2beta1-{compat}.0") >= 8
    statuses = {(e.method, e.path.split("/apis/")[-1][:30], e.status) for e in wire.exchanges if e.status >= 400}
    assert {s for _, _, s in statuses} == {404, 409}


def test_one_second_periodic_run_fires_and_stops_when_disabled(kfp_server: Callable[..., Any],
                                                                pipelines: dict[str, Path]) -> None:
    srv = kfp_server(execute=False, run_delay=0.0)
    client = _client(srv.url)
    pipeline = client.upload_pipeline(str(pipelines["add-square"]), pipeline_name="p")
    version_id = client.list_pipeline_versions(pipeline.pipeline_id).pipeline_versions[0].pipeline_version_id
    exp = client.create_experiment("sched")
    rec = client.create_recurring_run(exp.experiment_id, "every-second", interval_second=1,
                                      pipeline_id=pipeline.pipeline_id, version_id=version_id, max_concurrency=10)
    deadline = time.monotonic() + 10
    while len(_runs_of(client, rec.recurring_run_id)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(_runs_of(client, rec.recurring_run_id)) >= 2
    client.disable_recurring_run(rec.recurring_run_id)
    time.sleep(0.3)
    count = len(_runs_of(client, rec.recurring_run_id))
    time.sleep(2.2)
    assert len(_runs_of(client, rec.recurring_run_id)) == count


def _runs_of(client: Any, recurring_run_id: str) -> list[Any]:
    runs = client.list_runs(page_size=200).runs or []
    return [r for r in runs if r.recurring_run_id == recurring_run_id]
