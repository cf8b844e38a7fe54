"""Waiting for a run: progress lines on state and task changes, capped backoff, timeouts (injected clock)."""

from __future__ import annotations

from typing import Any

import pytest
from fake_clock import FakeClock

from kfp_ci.client._models import Run, Task
from kfp_ci.deploy import wait_for_run
from kfp_ci.errors import ApiError, ConnectError, ServerError, TimeoutExpired


class Runs:
    def __init__(self, states: list[tuple[str, dict[str, str]]]) -> None:
        self.states = states
        self.polls = 0
        self.terminated: list[str] = []

    def get_run(self, run_id: str) -> Run:
        state, tasks = self.states[min(self.polls, len(self.states) - 1)]
        self.polls += 1
        # the DAG driver's own task details come too; progress lines only name the user's tasks
        details = (Task("t0", "root", state), *(Task(f"t-{name}", name, st) for name, st in tasks.items()))
        return Run(run_id=run_id, display_name="r", state=state, tasks=details)

    def terminate_run(self, run_id: str) -> None:
        self.terminated.append(run_id)


def test_progress_lines_and_capped_backoff() -> None:
    states = [("PENDING", {})] * 2 + [("RUNNING", {"add": "RUNNING"})] * 3 + [("RUNNING", {"add": "SUCCEEDED",
              "square": "RUNNING"})] * 6 + [("SUCCEEDED", {"add": "SUCCEEDED", "square": "SUCCEEDED"})]
    runs, clock, lines = Runs(states), FakeClock(), []
    api: Any = runs
    done = wait_for_run(api, "r1", interval=1.0, max_interval=4.0, progress=lines.append, clock=clock,
                        sleep=clock.sleep)
    assert done.state == "SUCCEEDED"
    assert [line.split(" (")[0] for line in lines if line.startswith("run")] == [
        "run r1: PENDING", "run r1: RUNNING", "run r1: SUCCEEDED"]
    assert "  task add: SUCCEEDED" in lines and "  task square: SUCCEEDED" in lines
    assert lines.count("  task add: RUNNING") == 1  # only changes are printed
    assert not [line for line in lines if "root" in line]  # the DAG driver is not a task of the user
    assert max(clock.sleeps) <= 4.0 * 1.1 and clock.sleeps[0] <= 1.1
    assert clock.sleeps[-1] > clock.sleeps[0]  # it backs off


def test_timeout_keeps_or_terminates_the_run() -> None:
    runs, clock = Runs([("RUNNING", {})]), FakeClock()
    api: Any = runs
    with pytest.raises(TimeoutExpired) as info:
        wait_for_run(api, "r2", timeout=30, progress=lambda _l: None, clock=clock, sleep=clock.sleep)
    assert info.value.exit_code == 5 and "still RUNNING after 30s" in str(info.value)
    assert "--terminate-on-timeout" in str(info.value) and runs.terminated == []
    assert 30 <= clock.now <= 31
    clock = FakeClock()
    with pytest.raises(TimeoutExpired, match="terminated it"):
        wait_for_run(api, "r2", timeout=5, terminate_on_timeout=True, progress=lambda _l: None, clock=clock,
                     sleep=clock.sleep)
    assert runs.terminated == ["r2"]


@pytest.mark.parametrize("state", ["FAILED", "CANCELED", "SKIPPED"])
def test_every_terminal_state_ends_the_wait(state: str) -> None:
    clock = FakeClock()
    api: Any = Runs([("RUNNING", {}), (state, {})])
    assert wait_for_run(api, "r3", progress=lambda _l: None, clock=clock, sleep=clock.sleep).state == state


class Outage(Runs):
    """Polls answer from ``script``: ``"E"`` raises ``error`` (the server is down), a state answers that state."""

    def __init__(self, script: list[str], error: Exception) -> None:
        super().__init__([])
        self.script = script
        self.error = error

    def get_run(self, run_id: str) -> Run:
        step = self.script[min(self.polls, len(self.script) - 1)]
        self.polls += 1
        if step == "E":
            raise self.error
        return Run(run_id=run_id, display_name="r", state=step)


@pytest.mark.parametrize("error", [ApiError(503, "unavailable"), ConnectError("cannot reach: ReadError"),
                                   ApiError(502, "bad gateway")])
def test_wait_rides_out_an_outage_with_one_line_and_backoff(error: Exception) -> None:
    """Minutes of 503s (or resets, timeouts) while the run goes on: the wait goes on too, saying so once."""
    runs, clock, lines = Outage(["RUNNING"] + ["E"] * 20 + ["RUNNING", "SUCCEEDED"], error), FakeClock(), []
    api: Any = runs
    done = wait_for_run(api, "r4", interval=1.0, max_interval=10.0, progress=lines.append, clock=clock,
                        sleep=clock.sleep, outage_window=300)
    assert done.state == "SUCCEEDED"
    outage_lines = [line for line in lines if "unavailable" in line]
    assert len(outage_lines) == 1 and "up to 300s" in outage_lines[0]
    assert clock.now > 120  # it really waited through the outage
    assert max(clock.sleeps) <= 10 * 1.1 and clock.sleeps[1] < clock.sleeps[5]  # backs off, capped


def test_two_outages_give_two_lines() -> None:
    runs, clock, lines = Outage(["RUNNING", "E", "E", "RUNNING", "E", "SUCCEEDED"], ApiError(503, "x")), FakeClock(), []
    api: Any = runs
    wait_for_run(api, "r5", progress=lines.append, clock=clock, sleep=clock.sleep)
    assert len([line for line in lines if "unavailable" in line]) == 2


def test_an_outage_longer_than_the_window_exits_4() -> None:
    runs, clock, lines = Outage(["RUNNING", "E"], ApiError(503, "unavailable")), FakeClock(), []
    api: Any = runs
    with pytest.raises(ServerError) as info:
        wait_for_run(api, "r6", progress=lines.append, clock=clock, sleep=clock.sleep, outage_window=60)
    assert info.value.exit_code == 4 and "longer than the outage window (60s)" in str(info.value)
    assert 60 <= clock.now <= 62 and len([line for line in lines if "unavailable" in line]) == 1


def test_a_client_error_is_not_an_outage() -> None:
    runs, clock = Outage(["RUNNING", "E"], ApiError(400, "bad request")), FakeClock()
    api: Any = runs
    with pytest.raises(ApiError):
        wait_for_run(api, "r7", progress=lambda _l: None, clock=clock, sleep=clock.sleep)
    assert len(clock.sleeps) == 1  # the one poll interval before the failing poll, no retry after it
