"""Waiting for a run: progress lines on state and task changes, capped backoff, timeouts (injected clock)."""

from __future__ import annotations

from typing import Any

import pytest
from fake_clock import FakeClock

from kfp_ci.client._models import Run, Task
from kfp_ci.deploy import wait_for_run
from kfp_ci.errors import TimeoutExpired


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
