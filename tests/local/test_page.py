"""The read-only page at ``/``, rendered by headless Chromium (Debian ``chromium``; ``scripts/setup-chromium``)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from bs4 import BeautifulSoup

from .test_api import V2, upload

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def dump_dom(url: str, profile: Path) -> BeautifulSoup:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed: run scripts/setup-chromium")
    done = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
                          capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    return BeautifulSoup(done.stdout, "html.parser")


def _rows(dom: BeautifulSoup, table_id: str) -> list[list[str]]:
    table = dom.find("table", id=table_id)
    assert table is not None, f"no table {table_id}"
    return [[td.get_text(strip=True) for td in tr.find_all("td")] for tr in table.find("tbody").find_all("tr")]


@pytest.mark.chromium
def test_page_lists_pipelines_versions_runs_and_recurring_runs(kfp_server: Callable[..., Any],
                                                               pipelines: dict[str, Path], tmp_path: Path) -> None:
    srv = kfp_server(execute=False, run_delay=0.0)
    empty = dump_dom(srv.url + "/", tmp_path / "profile-empty")
    assert empty.find(id="pipelines-empty") is not None and empty.find(id="runs-empty") is not None
    p = upload(srv.url, pipelines["add-square"], name="train").json()
    run = httpx.post(f"{srv.url}{V2}/runs", json={"display_name": "nightly-check", "pipeline_version_reference": {
        "pipeline_id": p["pipeline_id"]}}).json()
    httpx.post(f"{srv.url}{V2}/recurringruns", json={
        "display_name": "hourly", "pipeline_version_reference": {"pipeline_id": p["pipeline_id"]},
        "trigger": {"cron_schedule": {"cron": "0 0 * * * *"}}, "mode": "DISABLE"})
    deadline = time.monotonic() + 10
    while httpx.get(f"{srv.url}{V2}/runs/{run['run_id']}").json()["state"] != "SUCCEEDED":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    dom = dump_dom(srv.url + "/pipeline/", tmp_path / "profile")
    assert dom.title is not None and "kfp-ci" in dom.title.get_text()
    assert _rows(dom, "pipelines")[0][:3] == ["train", "-", "1"]
    assert _rows(dom, "versions")[0][:2] == ["train", "train"]
    runs = _rows(dom, "runs")
    assert runs[0][:4] == ["nightly-check", "train", "train", "SUCCEEDED"] and runs[0][4].endswith(" s")
    assert _rows(dom, "recurring-runs")[0] == ["hourly", "train", "latest version", "cron 0 0 * * * *", "disabled"]
