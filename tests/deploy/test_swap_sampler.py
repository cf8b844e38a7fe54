"""What another client sees during schedule swaps against the embedded server: never zero enabled recurring runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .swap_sampler import measure


def test_a_20ms_sampler_never_sees_zero_enabled_recurring_runs(kfp_server: Callable[..., Any],
                                                              compiled: dict[str, Path]) -> None:
    srv = kfp_server(execute=False)
    sequential = measure(srv.url, compiled["add-square"], 12)
    concurrent = measure(srv.url, compiled["add-square"], 6, concurrent=2)
    assert sum(sequential.values()) > 5 and sum(concurrent.values()) > 5  # the sampler did sample
    assert sequential[0] == 0 and concurrent[0] == 0, (sequential, concurrent)
    assert max(sequential) <= 2 and max(concurrent) <= 3  # the overlap: the new one enabled before the old is off
