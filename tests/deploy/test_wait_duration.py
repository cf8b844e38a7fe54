"""The wait's last progress line and the deploy summary print the same duration for one run (issue 14)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from fake_clock import FakeClock

from kfp_ci.client._models import Run
from kfp_ci.deploy import DeployResult, wait_for_run
from kfp_ci.deploy._report import human

START = datetime(2026, 1, 1, 3, 0, 0, tzinfo=timezone.utc)


class SlowStart:
    """The run was created 5 s before the wait began and finished 10.0 s after it was created."""

    def __init__(self) -> None:
        self.polls = 0

    def get_run(self, run_id: str) -> Run:
        self.polls += 1
        if self.polls < 4:
            return Run(run_id=run_id, display_name="r", state="RUNNING", created_at=START)
        return Run(run_id=run_id, display_name="r", state="SUCCEEDED", created_at=START,
                   finished_at=START + timedelta(seconds=10))


def test_final_progress_line_and_summary_agree_on_the_duration() -> None:
    clock, lines = FakeClock(), []
    api: Any = SlowStart()
    run = wait_for_run(api, "r1", interval=4.0, max_interval=8.0, progress=lines.append, clock=clock,
                       sleep=clock.sleep)
    final = next(line for line in lines if "SUCCEEDED" in line)
    result = DeployResult(pipeline="p", run_id="r1", run_state=run.state, run_duration=10.0)
    summary = human(result)
    assert final == "run r1: SUCCEEDED (10s)"
    assert "duration" in summary and "10s" in summary
    assert clock.now != 10.0  # the wait's own elapsed time differs; it is not what is printed
