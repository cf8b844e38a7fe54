"""The recurring-run swap: one enabled kfp-ci run per pipeline, convergence after interruption, races.

These drive the swap algorithm against an in-memory recurring-run store; the end-to-end tests drive it
against the embedded server.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

import pytest

from kfp_ci.deploy._schedule import Owned, ScheduleSwapError, ensure_recurring_run, parse_marker
from kfp_ci.errors import ApiError, NotFound


class Store:
    def __init__(self) -> None:
        self.runs: dict[str, Owned] = {}
        self.ids = itertools.count(1)
        self.calls: list[str] = []
        self.hook: Callable[[str], None] | None = None
        self.lock = threading.RLock()

    def _event(self, what: str) -> None:
        self.calls.append(what)
        if self.hook:
            self.hook(what)

    def list_owned(self, pipeline_id: str) -> list[Owned]:
        with self.lock:
            found = [r for r in self.runs.values() if r.pipeline_id == pipeline_id]
        self._event("list")
        return found

    def create(self, *, name: str, description: str, enabled: bool) -> Owned:
        with self.lock:
            n = next(self.ids)
            pid, spec, stamp = parse_marker(description)
            # Ids sort against creation order, as random ids may: order must come from the marker's stamp.
            run = Owned(id=f"r{100 - n}", name=name, enabled=enabled, created=stamp or "", pipeline_id=pid,
                        spec=spec)
            self.runs[run.id] = run
        self._event(f"create {run.id}")
        return run

    def _set(self, rid: str, enabled: bool) -> None:
        with self.lock:
            if rid not in self.runs:
                raise NotFound(404, "recurring run not found")
            old = self.runs[rid]
            self.runs[rid] = Owned(old.id, old.name, enabled, old.created, old.pipeline_id, old.spec)

    def enable(self, rid: str) -> None:
        self._set(rid, True)
        self._event(f"enable {rid}")

    def disable(self, rid: str) -> None:
        self._set(rid, False)
        self._event(f"disable {rid}")

    def delete(self, rid: str) -> None:
        with self.lock:
            if rid not in self.runs:
                raise NotFound(404, "recurring run not found")
            del self.runs[rid]
        self._event(f"delete {rid}")

    def enabled(self) -> list[str]:
        return sorted(r.id for r in self.runs.values() if r.enabled)


def deploy(store: Store, spec: str, **kw: object) -> str:
    outcome = ensure_recurring_run(store, pipeline_id="p", name="train", description="d", spec=spec, **kw)  # type: ignore[arg-type]
    return outcome.action


def test_first_then_unchanged_then_swap_in_order() -> None:
    store = Store()
    assert deploy(store, "aaaa") == "created"
    assert store.enabled() == ["r99"]
    store.calls.clear()
    assert deploy(store, "aaaa") == "unchanged"
    assert store.calls == ["list"]
    store.calls.clear()
    assert deploy(store, "bbbb") == "swapped"
    # create disabled, enable new, disable old, delete old: never a gap (a brief overlap of two instead).
    assert [c for c in store.calls if c != "list"] == ["create r98", "enable r98", "disable r99", "delete r99"]
    assert store.enabled() == ["r98"] and list(store.runs) == ["r98"]


def test_keep_old_keeps_the_replaced_run_disabled() -> None:
    store = Store()
    deploy(store, "aaaa")
    deploy(store, "bbbb", keep_old=True)
    assert store.enabled() == ["r98"] and sorted(store.runs) == ["r98", "r99"]
    assert deploy(store, "bbbb", keep_old=True) == "unchanged"
    assert sorted(store.runs) == ["r98", "r99"]


def test_dry_run_changes_nothing() -> None:
    store = Store()
    deploy(store, "aaaa")
    before = dict(store.runs)
    outcome = ensure_recurring_run(store, pipeline_id="p", name="t", description="d", spec="bbbb", dry_run=True)
    assert outcome.action == "would swap" and store.runs == before
    assert "disable r99" in outcome.steps


@pytest.mark.parametrize("crash_after", ["create", "disable", "enable"])
def test_interrupted_swap_converges_on_the_next_deploy(crash_after: str) -> None:
    store = Store()
    deploy(store, "aaaa")

    def crash(what: str) -> None:
        if what.startswith(crash_after) and what != "create r99":
            raise KeyboardInterrupt

    store.hook = crash
    with pytest.raises(KeyboardInterrupt):
        deploy(store, "bbbb")
    store.hook = None
    assert len(store.runs) == 2  # left mid-swap
    deploy(store, "bbbb")
    assert store.enabled() == ["r98"] and list(store.runs) == ["r98"]
    assert deploy(store, "bbbb") == "unchanged"


@pytest.mark.parametrize("pause_at", ["list", "create", "disable", "enable"])
def test_two_racing_deploys_end_with_one_enabled_run(pause_at: str) -> None:
    """Deploy A pauses after each kind of step while deploy B runs to completion, then A finishes."""
    store = Store()
    deploy(store, "old0")
    b_done = threading.Event()
    paused = threading.Event()
    a_thread = threading.current_thread()

    def hook(what: str) -> None:
        if threading.current_thread() is a_thread and what.startswith(pause_at) and not paused.is_set():
            paused.set()
            worker = threading.Thread(target=lambda: (deploy(store, "bbbb"), b_done.set()))
            worker.start()
            worker.join(10)

    store.hook = hook
    result_a = deploy(store, "aaaa")
    store.hook = None
    assert b_done.is_set()
    assert result_a in ("created", "swapped", "superseded")
    assert len(store.enabled()) == 1
    # The next deploy of either converges without error and keeps a single enabled run.
    deploy(store, "bbbb")
    assert len(store.enabled()) == 1 and len(store.runs) == 1


def test_a_swap_never_leaves_zero_enabled_between_its_steps() -> None:
    """After every single request of a swap (and of a keep-old swap) at least one recurring run is enabled."""
    store = Store()
    deploy(store, "aaaa")
    seen: list[int] = []
    store.hook = lambda what: seen.append(len(store.enabled()))
    deploy(store, "bbbb")
    deploy(store, "cccc", keep_old=True)
    assert seen and min(seen) == 1 and max(seen) == 2  # an overlap of two for a moment, never a gap
    assert len(store.enabled()) == 1


class Failing(Store):
    """A store whose ``fail`` operations (e.g. ``{"enable"}``, ``{"disable r99"}``) answer 503."""

    def __init__(self) -> None:
        super().__init__()
        self.fail: set[str] = set()

    def _check(self, what: str) -> None:
        if what in self.fail or what.split(" ")[0] in self.fail:
            raise ApiError(503, "unavailable")

    def enable(self, rid: str) -> None:
        self._check(f"enable {rid}")
        super().enable(rid)

    def disable(self, rid: str) -> None:
        self._check(f"disable {rid}")
        super().disable(rid)

    def delete(self, rid: str) -> None:
        self._check(f"delete {rid}")
        super().delete(rid)

    def create(self, *, name: str, description: str, enabled: bool) -> Owned:
        self._check("create")
        return super().create(name=name, description=description, enabled=enabled)


@pytest.mark.parametrize(("fail", "enabled_after", "says"), [
    ({"create"}, ["r99"], "unavailable"),
    ({"enable"}, ["r99"], "r99 stays the enabled one"),
    ({"enable", "delete"}, ["r99"], "left disabled"),
    ({"disable r99"}, ["r99"], "rolled back: r99 stays the enabled one"),
    ({"disable"}, ["r98", "r99"], "TWO recurring runs are enabled"),
    ({"delete"}, ["r98"], None),
])
def test_a_failed_step_leaves_one_enabled_run_or_says_which(fail: set[str], enabled_after: list[str],
                                                            says: str | None) -> None:
    store = Failing()
    deploy(store, "aaaa")
    store.fail = fail
    if says is None:  # a failed delete only warns: the replaced run is disabled already
        assert deploy(store, "bbbb") == "swapped"
    else:
        with pytest.raises((ScheduleSwapError, ApiError)) as info:
            deploy(store, "bbbb")
        assert says in str(info.value) and info.value.exit_code == 4
    assert store.enabled() == enabled_after
    store.fail = set()
    deploy(store, "bbbb")  # the next deploy converges
    assert len(store.enabled()) == 1 and len(store.runs) == 1
