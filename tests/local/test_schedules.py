"""Recurring-run semantics over HTTP: max_concurrency, catch-up after a pause, end time; concurrent writes."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx

from .test_api import V2, upload


def _recurring(url: str, pipeline_id: str, **fields: Any) -> str:
    body = {"display_name": "every-second", "pipeline_version_reference": {"pipeline_id": pipeline_id},
            "trigger": {"periodic_schedule": {"interval_second": "1"}}, "mode": "ENABLE", **fields}
    response = httpx.post(f"{url}{V2}/recurringruns", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["recurring_run_id"])


def _count(url: str, recurring_run_id: str) -> int:
    runs = httpx.get(f"{url}{V2}/runs", params={"page_size": "200"}).json().get("runs", [])
    return sum(1 for r in runs if r.get("recurring_run_id") == recurring_run_id)


def test_max_concurrency_holds_triggers_while_runs_are_active(kfp_server: Callable[..., Any],
                                                              pipelines: dict[str, Path]) -> None:
    srv = kfp_server(execute=False, run_delay=30.0)
    p = upload(srv.url, pipelines["add-square"], name="p").json()
    rid = _recurring(srv.url, p["pipeline_id"], max_concurrency="1")
    time.sleep(2.5)
    assert _count(srv.url, rid) == 1  # the first run is still RUNNING: later triggers wait


def test_catchup_after_a_pause_and_no_catchup(kfp_server: Callable[..., Any], pipelines: dict[str, Path]) -> None:
    srv = kfp_server(execute=False, run_delay=0.0)
    p = upload(srv.url, pipelines["add-square"], name="p").json()
    catchup = _recurring(srv.url, p["pipeline_id"], max_concurrency="10", mode="DISABLE")
    latest_only = _recurring(srv.url, p["pipeline_id"], max_concurrency="10", mode="DISABLE", no_catchup=True,
                             display_name="latest-only")
    time.sleep(3.5)
    for rid in (catchup, latest_only):
        assert httpx.post(f"{srv.url}{V2}/recurringruns/{rid}:enable").status_code == 200
    time.sleep(0.6)
    assert _count(srv.url, catchup) >= 3  # every missed interval since creation
    assert _count(srv.url, latest_only) <= 1


def test_end_time_in_the_past_never_fires(kfp_server: Callable[..., Any], pipelines: dict[str, Path]) -> None:
    srv = kfp_server(execute=False, run_delay=0.0)
    p = upload(srv.url, pipelines["add-square"], name="p").json()
    past = (datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    rid = _recurring(srv.url, p["pipeline_id"], trigger={"periodic_schedule": {"interval_second": "1",
                                                                               "end_time": past}})
    time.sleep(1.6)
    assert _count(srv.url, rid) == 0


def test_concurrent_uploads_of_one_name_create_exactly_one(kfp_server: Callable[..., Any],
                                                           pipelines: dict[str, Path]) -> None:
    srv = kfp_server(execute=False)
    content = pipelines["add-square"].read_bytes()

    def attempt(_: int) -> int:
        r = httpx.post(f"{srv.url}{V2}/pipelines/upload", params={"name": "same"},
                       files={"uploadfile": ("p.yaml", content)}, timeout=30)
        return r.status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = sorted(pool.map(attempt, range(12)))
    assert statuses == [200] + [409] * 11
    listed = httpx.get(f"{srv.url}{V2}/pipelines").json()["pipelines"]
    assert len(listed) == 1
    versions = httpx.get(f"{srv.url}{V2}/pipelines/{listed[0]['pipeline_id']}/versions").json()
    assert versions["total_size"] == 1
