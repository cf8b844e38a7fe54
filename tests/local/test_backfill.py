"""Recurring runs with a window in the past backfill like KFP's scheduled-workflow controller (its integration
test: interval 60 s, start 10:00, end 10:02 -> 2 runs with catch-up, 1 without), for periodic and cron triggers;
one unschedulable recurring run does not stop the others."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from .test_api import V2, upload


def _stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _window() -> tuple[datetime, datetime]:
    start = (datetime.now(timezone.utc) - timedelta(hours=1)).replace(second=0, microsecond=0)
    return start, start + timedelta(minutes=2)


def _create(url: str, pipeline_id: str, name: str, trigger: dict[str, Any], **fields: Any) -> httpx.Response:
    body = {"display_name": name, "pipeline_version_reference": {"pipeline_id": pipeline_id},
            "trigger": trigger, "mode": "ENABLE", "max_concurrency": "10", **fields}
    return httpx.post(f"{url}{V2}/recurringruns", json=body)


def _runs_of(url: str, recurring_run_id: str) -> list[dict[str, Any]]:
    runs = httpx.get(f"{url}{V2}/runs", params={"page_size": "200"}).json().get("runs", [])
    return sorted((r for r in runs if r.get("recurring_run_id") == recurring_run_id),
                  key=lambda r: str(r["scheduled_at"]))


def _settle(srv: Any, ids: list[str], want: dict[str, int]) -> dict[str, list[dict[str, Any]]]:
    deadline = time.monotonic() + 10
    while True:
        srv.scheduler_tick()
        found = {rid: _runs_of(srv.url, rid) for rid in ids}
        if all(len(found[rid]) >= want[rid] for rid in ids) or time.monotonic() > deadline:
            time.sleep(0.5)  # a little longer: nothing more may fire
            srv.scheduler_tick()
            return {rid: _runs_of(srv.url, rid) for rid in ids}
        time.sleep(0.1)


@pytest.mark.parametrize("kind", ["periodic", "cron"])
def test_a_window_in_the_past_backfills_two_runs_with_catchup_and_one_without(
        kfp_server: Callable[..., Any], pipelines: dict[str, Path], kind: str) -> None:
    srv = kfp_server(execute=False, run_delay=0.0)
    p = upload(srv.url, pipelines["add-square"], name="p").json()
    start, end = _window()
    window = {"start_time": _stamp(start), "end_time": _stamp(end)}
    trigger = ({"periodic_schedule": {"interval_second": "60", **window}} if kind == "periodic"
               else {"cron_schedule": {"cron": "0 * * * * *", **window}})
    catchup = _create(srv.url, p["pipeline_id"], "catchup", trigger)
    latest = _create(srv.url, p["pipeline_id"], "no-catchup", trigger, no_catchup=True)
    assert catchup.status_code == 200 and latest.status_code == 200, (catchup.text, latest.text)
    ids = [catchup.json()["recurring_run_id"], latest.json()["recurring_run_id"]]
    found = _settle(srv, ids, {ids[0]: 2, ids[1]: 1})
    assert len(found[ids[0]]) == 2 and len(found[ids[1]]) == 1, found
    # catch-up runs carry the missed times: start + 1 min and start + 2 min
    assert [r["scheduled_at"] for r in found[ids[0]]] == [_stamp(start + timedelta(minutes=1)), _stamp(end)]


def test_backfill_waits_for_max_concurrency(kfp_server: Callable[..., Any], pipelines: dict[str, Path]) -> None:
    srv = kfp_server(execute=False, run_delay=1.0)
    p = upload(srv.url, pipelines["add-square"], name="p").json()
    start, end = _window()
    trigger = {"periodic_schedule": {"interval_second": "60", "start_time": _stamp(start),
                                     "end_time": _stamp(end)}}
    rid = _create(srv.url, p["pipeline_id"], "one-at-a-time", trigger, max_concurrency="1").json()["recurring_run_id"]
    srv.scheduler_tick()
    assert len(_runs_of(srv.url, rid)) == 1  # the second missed time waits while the first run is active
    found = _settle(srv, [rid], {rid: 2})
    assert len(found[rid]) == 2


def test_never_firing_cron_is_refused_at_creation(kfp_server: Callable[..., Any], pipelines: dict[str, Path]) -> None:
    srv = kfp_server(execute=False)
    p = upload(srv.url, pipelines["add-square"], name="p").json()
    answer = _create(srv.url, p["pipeline_id"], "feb-31", {"cron_schedule": {"cron": "0 0 0 31 2 *"}})
    assert answer.status_code == 400
    assert "never fires" in answer.json()["message"]


def test_an_unschedulable_recurring_run_is_marked_and_skipped_while_others_fire(
        kfp_server: Callable[..., Any], pipelines: dict[str, Path], caplog: pytest.LogCaptureFixture) -> None:
    srv = kfp_server(execute=False, run_delay=0.0)
    p = upload(srv.url, pipelines["add-square"], name="p").json()
    every_second = {"periodic_schedule": {"interval_second": "1"}}
    bad = _create(srv.url, p["pipeline_id"], "bad", every_second).json()["recurring_run_id"]

    def break_it(r: dict[str, Any]) -> None:  # as a data folder written before the check existed could hold it
        r["trigger"] = {"cron": "0 0 0 31 2 *"}
    srv.store.update("recurring", bad, break_it)
    caplog.set_level(logging.WARNING, logger="kfp_ci.local")
    good = _create(srv.url, p["pipeline_id"], "good", every_second).json()["recurring_run_id"]
    time.sleep(2.5)
    for _ in range(5):
        srv.scheduler_tick()
    assert len(_runs_of(srv.url, good)) >= 2
    assert _runs_of(srv.url, bad) == []
    shown = httpx.get(f"{srv.url}{V2}/recurringruns/{bad}").json()
    assert "never fires" in shown["error"]["message"]
    lines = [r for r in caplog.records if bad in r.getMessage()]
    assert len(lines) == 1 and not any(r.exc_info for r in caplog.records)
