"""The server's page (the small KFP UI): rendered by headless Chromium (Debian ``chromium``;
``scripts/setup-chromium``), checked by a strict HTML5 parser, screenshots written to ``test-output/page/``."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import html5lib
import httpx
import pytest
from bs4 import BeautifulSoup

from .test_api import V2, upload

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(os.environ.get("KFP_CI_TEST_OUTPUT") or Path(__file__).resolve().parents[2] / "test-output") / "page"

BRANCHY = '''
from kfp import dsl


@dsl.component(base_image="python:3.11")
def make(n: int) -> int:
    return n * 2


@dsl.component(base_image="python:3.11")
def show(x: int) -> str:
    print("showing", x)
    return str(x)


@dsl.component(base_image="python:3.11")
def report(x: int, scores: dsl.Output[dsl.Metrics]) -> None:
    scores.log_metric("accuracy", 0.5 + x / 100)


@dsl.component(base_image="python:3.11")
def explode(x: int) -> None:
    raise ValueError(f"value {x} is too large")


@dsl.pipeline(name="branchy")
def branchy(n: int = 3) -> None:
    made = make(n=n)
    shown = show(x=made.output)
    with dsl.If(made.output > 100):
        explode(x=made.output)
    with dsl.ParallelFor([1, 2]) as item:
        show(x=item).after(shown)
    report(x=made.output)


@dsl.pipeline(name="explodes")
def explodes(n: int = 7) -> None:
    explode(x=make(n=n).output)
'''


@pytest.fixture(scope="module")
def ui_pipelines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import importlib.util

    from kfp import compiler

    out = tmp_path_factory.mktemp("ui")
    source = out / "branchy_defs.py"
    source.write_text(BRANCHY)
    spec = importlib.util.spec_from_file_location("branchy_defs", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    paths = {}
    for name in ("branchy", "explodes"):
        paths[name] = out / f"{name}.yaml"
        compiler.Compiler().compile(getattr(module, name), str(paths[name]))
    return paths


def _chromium() -> str:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed: run scripts/setup-chromium")
    return chromium


def dump_dom(url: str, profile: Path) -> BeautifulSoup:
    done = subprocess.run([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
                          capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    return BeautifulSoup(done.stdout, "html.parser")


def screenshot(url: str, name: str, profile: Path) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / f"{name}.png"
    shot.unlink(missing_ok=True)
    done = subprocess.run([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1280,1200",
                           f"--screenshot={shot}", url], capture_output=True, text=True, timeout=90, cwd=profile.parent)
    assert done.returncode == 0 and shot.stat().st_size > 10_000, done.stderr[-2000:]
    print(f"screenshot: {shot}")
    return shot


def checked_html(url: str, headers: dict[str, str] | None = None, status: int = 200) -> BeautifulSoup:
    """GET a page, assert its status and that a strict HTML5 parser finds no error in it."""
    resp = httpx.get(url, headers=headers)
    assert resp.status_code == status, resp.text[:500]
    assert resp.headers["content-type"].startswith("text/html")
    parser = html5lib.HTMLParser(strict=True)
    parser.parse(resp.text)  # raises on the first parse error
    return BeautifulSoup(resp.text, "html.parser")


def _rows(dom: BeautifulSoup, table_id: str) -> list[list[str]]:
    table = dom.find("table", id=table_id)
    assert table is not None, f"no table {table_id}"
    return [[td.get_text(" ", strip=True) for td in tr.find_all("td")] for tr in table.find("tbody").find_all("tr")]


def _states(dom: BeautifulSoup) -> dict[str, str]:
    return {g["data-task"]: g["data-state"] for g in dom.select("svg#dag g.node")}


def wait_state(url: str, run_id: str, states: tuple[str, ...] = ("SUCCEEDED", "FAILED"), limit: float = 60) -> str:
    deadline = time.monotonic() + limit
    while True:
        state = httpx.get(f"{url}{V2}/runs/{run_id}").json()["state"]
        if state in states:
            return str(state)
        assert time.monotonic() < deadline, f"run {run_id} still {state}"
        time.sleep(0.1)


def start_run(url: str, pipeline_id: str, name: str, **params: Any) -> str:
    body: dict[str, Any] = {"display_name": name, "pipeline_version_reference": {"pipeline_id": pipeline_id}}
    if params:
        body["runtime_config"] = {"parameters": params}
    return str(httpx.post(f"{url}{V2}/runs", json=body).json()["run_id"])


@pytest.mark.chromium
def test_overview_links_pipelines_versions_runs_and_recurring_runs(
        kfp_server: Callable[..., Any], pipelines: dict[str, Path], tmp_path: Path) -> None:
    srv = kfp_server(execute=False, run_delay=0.0)
    empty = checked_html(srv.url + "/")
    assert empty.find(id="pipelines-empty") is not None and empty.find(id="runs-empty") is not None
    p = upload(srv.url, pipelines["add-square"], name="train").json()
    run_id = start_run(srv.url, p["pipeline_id"], "nightly-check")
    httpx.post(f"{srv.url}{V2}/recurringruns", json={
        "display_name": "hourly", "pipeline_version_reference": {"pipeline_id": p["pipeline_id"]},
        "trigger": {"cron_schedule": {"cron": "0 0 * * * *"}}, "mode": "ENABLE"})
    wait_state(srv.url, run_id, ("SUCCEEDED",))
    dom = dump_dom(srv.url + "/pipeline/", tmp_path / "profile")
    assert dom.title is not None and "kfp-ci" in dom.title.get_text()
    assert _rows(dom, "pipelines")[0][:4] == ["train", "-", "1", "train"]
    runs = _rows(dom, "runs")
    assert runs[0][:4] == ["nightly-check", "train", "train", "SUCCEEDED"] and runs[0][4].endswith(" s")
    recurring = _rows(dom, "recurring-runs")[0]
    assert recurring[:5] == ["hourly", "train", "latest version", "cron 0 0 * * * *", "enabled"]
    upcoming = recurring[5].split(", ")
    assert len(upcoming) == 3 and all(t.endswith(":00:00Z") for t in upcoming), recurring
    # the links lead to the pipeline page and the run page, under the /pipeline prefix too
    link = dom.find("table", id="runs").find("a", string="nightly-check")
    assert link["href"] == f"runs/{run_id}"
    assert dom.find("base")["href"] == "/pipeline/"
    pipeline_page = checked_html(f"{srv.url}/pipeline/pipelines/{p['pipeline_id']}")
    assert _rows(pipeline_page, "versions")[0][:3] == ["train", _rows(pipeline_page, "versions")[0][1], "1"]
    assert _rows(pipeline_page, "runs")[0][0] == "nightly-check"
    screenshot(srv.url + "/", "overview", tmp_path / "profile-shot")


@pytest.mark.chromium
def test_run_page_draws_the_graph_with_states_inputs_outputs_logs_and_metrics(
        kfp_server: Callable[..., Any], ui_pipelines: dict[str, Path], tmp_path: Path) -> None:
    srv = kfp_server()
    p = upload(srv.url, ui_pipelines["branchy"], name="branchy").json()
    run_id = start_run(srv.url, p["pipeline_id"], "branchy-run", n=4)
    assert wait_state(srv.url, run_id) == "SUCCEEDED"
    page = checked_html(f"{srv.url}/runs/{run_id}")
    assert page.find("meta", attrs={"http-equiv": "refresh"}) is None  # finished: no refresh
    states = _states(page)
    assert states["make"] == "SUCCEEDED" and states["show"] == "SUCCEEDED" and states["report"] == "SUCCEEDED"
    cond = next(k for k in states if k.startswith("condition-"))
    loop = next(k for k in states if k.startswith("for-loop-"))
    assert states[cond] == "SKIPPED" and states[f"{cond}/explode"] == "SKIPPED"  # 8 > 100 is false
    assert states[loop] == "SUCCEEDED"
    steps = {row[0]: row for row in _rows(page, "tasks")}
    assert steps["make"][1] == "SUCCEEDED" and "n = 4" in steps["make"][3] and "Output = 8" in steps["make"][4]
    loop_rows = [k for k in steps if k.startswith(f"{loop}/show")]
    assert len(loop_rows) == 2, steps.keys()  # one row per iteration, each with its own input
    assert sorted((steps[k][3], steps[k][4]) for k in loop_rows) == [("x = 1", 'Output = "1"'),
                                                                     ("x = 2", 'Output = "2"')]
    assert "showing 8" in page.find("tr", id="task-show").find("pre").get_text()
    assert _rows(page, "metrics") == [["accuracy", "0.58", "report", "scores"]]
    # the graph's edges: make -> show, make -> report (a path per dependency)
    assert len(page.select("svg#dag path[marker-end]")) >= 5
    # KFP's UI link, as deploy prints it, opens this page in a browser
    dom = dump_dom(f"{srv.url}/pipeline/#/runs/details/{run_id}", tmp_path / "profile")
    assert dom.find("h1").get_text() == "Run branchy-run" and _states(dom) == states
    screenshot(f"{srv.url}/runs/{run_id}", "run-succeeded", tmp_path / "profile-shot")


@pytest.mark.chromium
def test_a_failed_run_shows_the_step_that_failed_and_its_exception(
        kfp_server: Callable[..., Any], ui_pipelines: dict[str, Path], tmp_path: Path) -> None:
    srv = kfp_server()
    p = upload(srv.url, ui_pipelines["explodes"], name="explodes").json()
    run_id = start_run(srv.url, p["pipeline_id"], "boom")
    assert wait_state(srv.url, run_id) == "FAILED"
    page = checked_html(f"{srv.url}/runs/{run_id}")
    assert _states(page) == {"make": "SUCCEEDED", "explode": "FAILED"}
    row = page.find("tr", id="task-explode")
    assert "ValueError: value 14 is too large" in row.find("pre").get_text()
    assert page.find(id="run-error") is not None
    overview = checked_html(srv.url + "/")
    assert _rows(overview, "runs")[0][3] == "FAILED"
    screenshot(f"{srv.url}/runs/{run_id}", "run-failed", tmp_path / "profile-shot")


def test_pages_refresh_while_a_run_is_running_and_stop_when_it_ends(
        kfp_server: Callable[..., Any], pipelines: dict[str, Path]) -> None:
    srv = kfp_server(execute=False, run_delay=30.0)
    p = upload(srv.url, pipelines["add-square"], name="train").json()
    run_id = start_run(srv.url, p["pipeline_id"], "long")
    wait_state(srv.url, run_id, ("RUNNING",))
    for url in (f"{srv.url}/runs/{run_id}", f"{srv.url}/", f"{srv.url}/pipelines/{p['pipeline_id']}"):
        assert checked_html(url).find("meta", attrs={"http-equiv": "refresh"}) is not None, url
    httpx.post(f"{srv.url}{V2}/runs/{run_id}:terminate")
    wait_state(srv.url, run_id, ("CANCELED",))
    for url in (f"{srv.url}/runs/{run_id}", f"{srv.url}/"):
        assert checked_html(url).find("meta", attrs={"http-equiv": "refresh"}) is None, url


def test_names_from_the_api_are_text_never_markup(kfp_server: Callable[..., Any], pipelines: dict[str, Path]) -> None:
    srv = kfp_server(execute=False, run_delay=0.0)
    evil = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    p = upload(srv.url, pipelines["add-square"], name=evil, description=evil).json()
    run_id = start_run(srv.url, p["pipeline_id"], evil)
    wait_state(srv.url, run_id, ("SUCCEEDED",))
    for url in (f"{srv.url}/", f"{srv.url}/runs/{run_id}", f"{srv.url}/pipelines/{p['pipeline_id']}"):
        page = checked_html(url)
        assert page.find("img") is None, url
        assert [s.get_text() for s in page.find_all("script")] == [page.find("script").get_text()]  # ours only
        assert evil in page.get_text(), url


def test_unknown_pages_and_ids_answer_404(kfp_server: Callable[..., Any]) -> None:
    srv = kfp_server(execute=False)
    checked_html(f"{srv.url}/runs/no-such-run", status=404)
    checked_html(f"{srv.url}/pipelines/no-such-pipeline", status=404)
    assert httpx.get(f"{srv.url}/nothing/here").status_code == 404
    assert httpx.get(f"{srv.url}/runs/..%2F..%2Fetc").status_code == 404


def test_multi_user_pages_show_only_the_callers_namespaces(kfp_server: Callable[..., Any],
                                                          pipelines: dict[str, Path]) -> None:
    srv = kfp_server(execute=False, run_delay=0.0, multi_user=True,
                     profiles={"alice@x.org": ("team-a",), "bob@x.org": ("team-b",)})
    alice = {"kubeflow-userid": "alice@x.org"}
    bob = {"kubeflow-userid": "bob@x.org"}
    with pipelines["add-square"].open("rb") as fh:
        p = httpx.post(f"{srv.url}{V2}/pipelines/upload", params={"name": "alice-secret", "namespace": "team-a"},
                       files={"uploadfile": ("p.yaml", fh)}, headers=alice).json()
    run = httpx.post(f"{srv.url}{V2}/runs", headers=alice, json={
        "display_name": "alice-run", "pipeline_version_reference": {"pipeline_id": p["pipeline_id"]},
        "experiment_id": httpx.post(f"{srv.url}{V2}/experiments", headers=alice,
                                    json={"display_name": "exp", "namespace": "team-a"}).json()["experiment_id"]})
    run_id = run.json()["run_id"]
    deadline = time.monotonic() + 10
    while httpx.get(f"{srv.url}{V2}/runs/{run_id}", headers=alice).json()["state"] != "SUCCEEDED":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    mine = checked_html(f"{srv.url}/", headers=alice)
    assert _rows(mine, "pipelines")[0][0] == "alice-secret" and _rows(mine, "runs")[0][0] == "alice-run"
    assert checked_html(f"{srv.url}/runs/{run_id}", headers=alice).find("h1").get_text() == "Run alice-run"
    theirs = checked_html(f"{srv.url}/", headers=bob)
    assert "alice" not in theirs.get_text().replace("bob@x.org", "")
    assert theirs.find(id="pipelines-empty") is not None and theirs.find(id="runs-empty") is not None
    checked_html(f"{srv.url}/runs/{run_id}", headers=bob, status=404)
    checked_html(f"{srv.url}/pipelines/{p['pipeline_id']}", headers=bob, status=404)
    anonymous = checked_html(f"{srv.url}/")
    assert "alice" not in anonymous.get_text() and "Sign in" in anonymous.get_text()
