"""Retries (idempotent calls; creates only after a lookup), backoff, waiting for runs and pagination."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fake_clock import FakeClock

from kfp_ci.client import RetryPolicy, _retry
from kfp_ci.errors import ApiError, ConnectError, TimeoutExpired

from .fakes import SpecFake, make_client
from .test_spec_requests import V2_RUN, V2_VERSION, v2_fake

HEALTHZ = "/apis/v2beta1/healthz"


Handler = Callable[[httpx.Request], httpx.Response]


def flaky(fake: SpecFake, path: str, *failures: Handler) -> tuple[Handler, list[httpx.Request]]:
    """A handler whose first requests to ``path`` fail with ``failures`` (in order), then reach ``fake``."""
    left = list(failures)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == path:
            seen.append(request)
            if left:
                return left.pop(0)(request)
        return fake(request)

    return handler, seen


def status(code: int, headers: dict[str, str] | None = None) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(code, text="upstream connect error", headers=headers or {})


def raise_(exc: type[httpx.TransportError]) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        raise exc("boom", request=request)

    return answer


# --------------------------------------------------------------------------------------------- GETs
def test_503_burst_and_resets_on_gets_are_survived() -> None:
    fake = v2_fake("v2beta1-2.17.0", "2.17.0")
    handler, seen = flaky(fake, "/apis/v2beta1/runs/r1", status(503), raise_(httpx.RemoteProtocolError),
                 raise_(httpx.ConnectError), status(502))
    client = make_client(handler, retry=RetryPolicy(attempts=5))
    assert client.get_run("r1").run_id == "r1"
    assert len(seen) == 5


def test_gets_give_up_after_the_attempts() -> None:
    fake = v2_fake("v2beta1-2.17.0", "2.17.0")
    handler, seen = flaky(fake, "/apis/v2beta1/runs/r1", *[status(503)] * 10)
    client = make_client(handler, retry=RetryPolicy(attempts=3))
    with pytest.raises(ApiError) as err:
        client.get_run("r1")
    assert err.value.status == 503 and len(seen) == 3


def test_connection_refused_everywhere_is_a_connect_error_after_the_attempts() -> None:
    fake = v2_fake("v2beta1-2.17.0", "2.17.0")
    handler, seen = flaky(fake, HEALTHZ, *[raise_(httpx.ConnectError)] * 10)
    with pytest.raises(ConnectError):
        make_client(handler, retry=RetryPolicy(attempts=4)).server  # noqa: B018
    assert len(seen) == 4


def test_backoff_is_exponential_full_jitter_capped_and_honours_retry_after() -> None:
    _retry.set_testing(False)
    clock = FakeClock(1000.0)
    policy = RetryPolicy(attempts=6, initial=1.0, maximum=4.0, timeout=100.0, clock=clock, sleep=clock.sleep,
                         rng=random.Random(7))
    fake = v2_fake("v2beta1-2.17.0", "2.17.0")
    handler, _ = flaky(fake, "/apis/v2beta1/runs/r1", status(503), status(503), status(503), status(503),
          status(429, {"Retry-After": "3"}))
    make_client(handler, retry=policy).get_run("r1")
    caps = [1.0, 2.0, 4.0, 4.0]
    assert len(clock.sleeps) == 5
    for slept, cap in zip(clock.sleeps, caps, strict=False):
        assert 0.0 <= slept <= cap
    assert clock.sleeps[-1] == 3.0  # Retry-After


def test_total_time_bounds_the_retries() -> None:
    _retry.set_testing(False)
    clock = FakeClock(1000.0)
    policy = RetryPolicy(attempts=100, initial=10.0, maximum=10.0, timeout=25.0, jitter=False, clock=clock,
                         sleep=clock.sleep)
    fake = v2_fake("v2beta1-2.17.0", "2.17.0")
    handler, _ = flaky(fake, "/apis/v2beta1/runs/r1", *[status(503)] * 100)
    with pytest.raises(ApiError):
        make_client(handler, retry=policy).get_run("r1")
    assert clock.sleeps == [10.0, 10.0]


def test_testing_switch_turns_backoff_off_and_caps_attempts() -> None:
    _retry.set_testing(True, attempts=2)
    clock = FakeClock(1000.0)
    fake = v2_fake("v2beta1-2.17.0", "2.17.0")
    handler, seen = flaky(fake, "/apis/v2beta1/runs/r1", *[status(503)] * 10)
    with pytest.raises(ApiError):
        make_client(handler, retry=RetryPolicy(attempts=9, clock=clock, sleep=clock.sleep)).get_run("r1")
    assert len(seen) == 2 and clock.sleeps == []


def test_retry_after_http_date() -> None:
    assert _retry.parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert _retry.parse_retry_after("soon") is None


# ------------------------------------------------------------------------------------ creates/uploads
def test_upload_timeout_after_the_server_stored_it_is_not_sent_twice(package: Path) -> None:
    fake = v2_fake("v2beta1-2.17.0", "2.17.0")
    handler, seen = flaky(fake, "/apis/v2beta1/pipelines/upload_version", raise_(httpx.ReadTimeout))
    version = make_client(handler).upload_pipeline_version(package, "git-abc", pipeline_id="p1")
    assert len(seen) == 1  # looked up by name and found: never re-sent
    assert version.pipeline_version_id == V2_VERSION["pipeline_version_id"]
    lookup = fake.requests[-1]
    assert lookup.url.path == "/apis/v2beta1/pipelines/p1/versions" and "git-abc" in lookup.url.params["filter"]


def test_upload_reset_before_the_server_stored_it_is_sent_again(package: Path) -> None:
    fake = v2_fake("v2beta1-2.17.0", "2.17.0")
    fake.on("GET", "/apis/v2beta1/pipelines/{pipeline_id}/versions", {})
    handler, seen = flaky(fake, "/apis/v2beta1/pipelines/upload_version", raise_(httpx.RemoteProtocolError))
    make_client(handler).upload_pipeline_version(package, "git-abc", pipeline_id="p1")
    assert len(seen) == 2  # absent after the ambiguous failure: sent once more


def test_create_503_is_resent_502_is_looked_up_first() -> None:
    fake = v2_fake("v2beta1-2.17.0", "2.17.0")
    handler, seen = flaky(fake, "/apis/v2beta1/runs", status(503))
    client = make_client(handler)
    client.run_pipeline("e1", "ci-run", pipeline_id="p1")
    assert [r.method for r in seen] == ["POST", "POST"]

    fake = v2_fake("v2beta1-2.17.0", "2.17.0")
    fake.on("GET", "/apis/v2beta1/runs", {"runs": [{**V2_RUN, "created_at": "2099-01-01T00:00:00Z"}]})
    handler, seen = flaky(fake, "/apis/v2beta1/runs", status(502))
    run = make_client(handler).run_pipeline("e1", "ci-run", pipeline_id="p1")
    assert [r.method for r in seen] == ["POST", "GET"] and run.run_id == "r1"


def test_an_older_run_with_the_same_name_is_not_taken_for_the_new_one() -> None:
    fake = v2_fake("v2beta1-2.17.0", "2.17.0")  # V2_RUN was created in 2026-08, before this call
    handler, seen = flaky(fake, "/apis/v2beta1/runs", raise_(httpx.ReadTimeout))
    make_client(handler).run_pipeline("e1", "ci-run", pipeline_id="p1")
    assert [r.method for r in seen] == ["POST", "GET", "POST"]


# --------------------------------------------------------------------------------------------- waiting
@pytest.mark.parametrize("final", ["CANCELED", "SUCCEEDED", "FAILED", "SKIPPED"])
def test_wait_for_run_completion_stops_on_every_terminal_state(final: str) -> None:
    fake = v2_fake("v2beta1-2.17.0", "2.17.0")
    fake.on("GET", "/apis/v2beta1/runs/{run_id}", {**V2_RUN, "state": "RUNNING"}, {**V2_RUN, "state": "CANCELING"},
            {**V2_RUN, "state": final})
    clock = FakeClock(1000.0)
    run = make_client(fake).wait_for_run_completion("r1", timeout=600, sleep_duration=2,
                                                  clock=clock, sleep=clock.sleep)
    assert run.state == final
    assert clock.sleeps == [2, 3.0]


def test_wait_for_run_completion_times_out_with_capped_polls() -> None:
    fake = v2_fake("v2beta1-2.17.0", "2.17.0")
    clock = FakeClock(1000.0)
    with pytest.raises(TimeoutExpired, match="r1 is still RUNNING after 100 s") as err:
        make_client(fake).wait_for_run_completion("r1", timeout=100, sleep_duration=5,
                                                 max_sleep=20, clock=clock, sleep=clock.sleep)
    assert err.value.exit_code == 5
    assert max(clock.sleeps) <= 20 and sum(clock.sleeps) == pytest.approx(100)


# ------------------------------------------------------------------------------------------ pagination
def test_list_methods_follow_page_tokens_and_page_size_limits() -> None:
    fake = v2_fake("v2beta1-2.17.0", "2.17.0")
    runs = [{**V2_RUN, "run_id": f"r{i}"} for i in range(5)]
    fake.on("GET", "/apis/v2beta1/runs",
            {"runs": runs[:2], "next_page_token": "t2", "total_size": 5},
            {"runs": runs[2:4], "next_page_token": "t4", "total_size": 5},
            {"runs": runs[4:], "total_size": 5})
    client = make_client(fake)
    page = client.list_runs()
    assert [r.run_id for r in page.runs] == ["r0", "r1", "r2", "r3", "r4"]
    assert page.total_size == 5 and page.next_page_token == ""
    tokens = [r.url.params.get("page_token") for r in fake.requests if r.url.path == "/apis/v2beta1/runs"]
    assert tokens == [None, "t2", "t4"]

    fake.on("GET", "/apis/v2beta1/runs", {"runs": runs[:2], "next_page_token": "t2"}, {"runs": runs[2:4],
                                                                                        "next_page_token": "t4"})
    page = client.list_runs(page_size=3)
    assert [r.run_id for r in page] == ["r0", "r1", "r2"]
    sizes = [r.url.params.get("page_size") for r in fake.requests[-2:]]
    assert sizes == ["3", "1"]
