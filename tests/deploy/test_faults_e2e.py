"""Faults during deploy against the embedded server (--faults): a long --wait outage, a failed first deploy."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kfp_ci.client import Client
from kfp_ci.client._retry import testing as no_backoff

from .test_deploy_e2e import kfp_ci


def test_wait_rides_out_a_run_of_503s_then_reports_the_run(kfp_server: Callable[..., Any], repo: Callable[..., Path],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """12 answers of 503 in a row to the run's GET (more than one call's retries): the wait goes on."""
    srv = kfp_server(execute=False, faults=True, run_delay=1.0)
    monkeypatch.chdir(repo("add-square"))
    srv.add_fault(match=r"/runs/[^/:]+$", method="GET", count=12, action="status", status=503,
                  body='{"code": 14, "message": "upstream connect error"}', content_type="application/json")
    with no_backoff():  # the client's own retries without sleeps; the wait's outage backoff is real
        code, out, _ = kfp_ci("deploy", "add-square.yaml", "--host", srv.url, "--run", "--wait", "--timeout", "60")
    assert code == 0, out
    assert out.count("the server is unavailable") == 1 and "SUCCEEDED" in out


def test_wait_gives_up_with_exit_4_once_the_outage_window_passes(kfp_server: Callable[..., Any],
                                                                 repo: Callable[..., Path],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    srv = kfp_server(execute=False, faults=True, run_delay=30.0)
    monkeypatch.chdir(repo("add-square"))
    srv.add_fault(match=r"/runs/[^/:]+$", method="GET", count=10_000, action="reset")
    with no_backoff():
        code, out, _ = kfp_ci("deploy", "add-square.yaml", "--host", srv.url, "--run", "--wait",
                              "--outage-window", "1.5")
    assert code == 4, out
    assert "longer than the outage window (1.5s)" in out and "kfp-ci wait" in out and "Traceback" not in out


@pytest.mark.parametrize("compat", ["2.17", "1.8"])
def test_a_failed_first_upload_leaves_no_empty_pipeline(kfp_server: Callable[..., Any], repo: Callable[..., Path],
                                                        monkeypatch: pytest.MonkeyPatch, compat: str) -> None:
    srv = kfp_server(execute=False, faults=True, compat=compat)
    monkeypatch.chdir(repo("add-square"))
    srv.add_fault(match=r"/pipelines/upload_version$", method="POST", count=100, action="status", status=500,
                  body='{"code": 13, "message": "object store unavailable"}', content_type="application/json")
    code, out, _ = kfp_ci("deploy", "add-square.yaml", "--host", srv.url)
    assert code == 4, out
    assert "removed the pipeline 'add-square'" in out and "Traceback" not in out
    assert list(Client(srv.url).list_pipelines()) == []
    srv.clear_faults()
    code, out, data = kfp_ci("deploy", "add-square.yaml", "--host", srv.url, "-o", "json")
    assert code == 0 and data["pipeline_action"] == "created", out
