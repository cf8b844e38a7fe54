"""Recurring runs: fire cron (robfig/cron v1, seconds first) and periodic triggers in UTC, by the rules of KFP's
scheduled-workflow controller.

The next fire time is computed from the last one (or, before the first, from the trigger's ``start_time``, else the
creation time): a periodic trigger fires ``interval_second`` after it, a cron trigger at its next match strictly
after it; nothing fires past ``end_time``. With catch-up (the default) every missed time fires, one after another,
so a start time in the past backfills; with ``no_catchup`` only the latest one does (a periodic trigger that is
more than one interval behind fires once, now). A due time waits while ``max_concurrency`` runs of the recurring
run are active. The run itself is created by a callback, which resolves always-latest recurring runs to the newest
version at each trigger.

Each recurring run is scheduled on its own: one whose trigger cannot fire (a stored cron that does not parse or
names no date that exists) is marked with a status message and skipped, and an unexpected error is logged once per
recurring run, never a traceback per tick.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import threading
from collections.abc import Callable
from datetime import datetime, timezone

from croniter import croniter

from kfp_ci.local._executor import TERMINAL
from kfp_ci.local._store import Record, Store, now

_MACROS = {
    "@yearly": "0 0 0 1 1 *", "@annually": "0 0 0 1 1 *", "@monthly": "0 0 0 1 * *", "@weekly": "0 0 0 * * 0",
    "@daily": "0 0 0 * * *", "@midnight": "0 0 0 * * *", "@hourly": "0 0 * * * *",
}
_EVERY = re.compile(r"^@every\s+((?:\d+(?:\.\d+)?(?:h|m|s|ms))+)$")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
MAX_CATCHUP = 20  # runs one recurring run may start in one tick (the rest of a backfill follows on later ticks)
NEVER = math.inf
log = logging.getLogger("kfp_ci.local")


def cron_error(expr: str) -> str:
    """KFP's 400 message for an unparseable cron, a message for one that never fires, or '' when it is usable."""
    try:
        spec, _every = parse_cron(expr)
    except ValueError as exc:
        return (f"Schedule cron is not a supported format(https://godoc.org/github.com/robfig/cron). "
                f"Error: {exc}")
    if spec and _never_fires(spec):
        return f"Schedule cron {expr!r} never fires: its days and months name no date that exists"
    return ""


def _never_fires(spec: str) -> bool:
    """Whether a 6-field spec matches no date at all (``0 0 0 31 2 *``: February 31)."""
    try:
        croniter(spec, 0.0, second_at_beginning=True).get_next(float)
    except Exception:  # croniter gives up after decades without a match
        return True
    return False


def parse_cron(expr: str) -> tuple[str, float]:
    """Return (6-field seconds-first expression, 0) or ('', interval seconds) for ``@every``. Raises ValueError."""
    text = " ".join(expr.split())
    if text in _MACROS:
        return _MACROS[text], 0.0
    every = _EVERY.match(text)
    if every:
        total = sum(float(n) * _UNIT[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", every.group(1)))
        if total < 1:
            raise ValueError(f"@every interval must be at least 1s: {expr}")
        return "", total
    if text.startswith("@"):
        raise ValueError(f"Unrecognized descriptor: {expr}")
    fields = text.split(" ")
    if len(fields) not in (5, 6):
        raise ValueError(f"Expected 5 to 6 fields, found {len(fields)}: {expr}")
    if len(fields) == 5:  # robfig v1: day-of-week omitted, seconds stay first
        fields.append("*")
    fields = ["*" if f == "?" else f for f in fields]
    spec = " ".join(fields)
    try:
        croniter(spec, second_at_beginning=True)
    except Exception as exc:
        raise ValueError(f"{exc}: {expr}") from None
    return spec, 0.0


def trigger_problem(trigger: Record) -> str:
    """Why ``trigger`` can never fire ('' when it can)."""
    if trigger.get("cron"):
        return cron_error(str(trigger["cron"]))
    try:
        interval = float(trigger.get("interval") or 0)
    except (TypeError, ValueError):
        return f"interval_second {trigger.get('interval')!r} is not a number"
    if not interval >= 1 or math.isinf(interval):
        return f"interval_second must be at least 1, got {trigger.get('interval')!r}"
    return ""


def _cron_next(spec: str, every: float, after: float) -> float:
    """robfig's ``Schedule.Next``: the first match strictly after ``after`` (``@every``: ``after`` + the delay)."""
    if not spec:
        return float(int(after) + max(1, int(every)))
    start = datetime.fromtimestamp(int(after), tz=timezone.utc)
    return float(croniter(spec, start, second_at_beginning=True).get_next(float))


def _cron_last(spec: str, every: float, first: float, limit: float) -> float:
    """The latest time <= ``limit`` of the sequence ``first``, ``Next(first)``, ... (``first`` if none is)."""
    if limit <= first:
        return first
    if not spec:
        step = max(1, int(every))
        return first + ((int(limit) - int(first)) // step) * step
    start = datetime.fromtimestamp(int(limit) + 1, tz=timezone.utc)
    previous = float(croniter(spec, start, second_at_beginning=True).get_prev(float))
    return max(first, previous)


def next_fire(rec: Record, at: float) -> float:
    """When ``rec`` fires next (epoch seconds; ``NEVER`` when it never does), as KFP's controller computes it.

    ``at`` (now) matters only with ``no_catchup``. The last fire time is ``rec['last_fired']``; before the first
    fire, the trigger's start time, else the creation time.
    """
    trigger = rec.get("trigger") or {}
    start = trigger.get("start")
    end = trigger.get("end")
    last = last_fired(rec)
    base = last if last is not None else (float(start) if start else float(int(float(rec.get("created_at") or at))))
    if start and float(start) > base:
        base = float(start)
    limit = float(end) if end else NEVER
    catchup = not rec.get("no_catchup")
    if trigger.get("cron"):
        spec, every = parse_cron(str(trigger["cron"]))
        result = _cron_next(spec, every, base)
        if result > limit:
            return NEVER
        return result if catchup else _cron_last(spec, every, result, min(at, limit))
    interval = float(max(1, int(float(trigger.get("interval") or 0))))
    result = base + interval
    if result > limit:
        return NEVER
    if not catchup and at >= result + interval:
        return float(int(at))  # cannot catch up: fire once, now
    return result


def next_after(trigger: Record, after: float) -> float:
    """The first fire time of ``trigger`` after a fire at ``after`` (catch-up rules; ``NEVER`` past its end)."""
    return next_fire({"trigger": trigger, "last_fired": after, "created_at": after}, after)


def last_fired(rec: Record) -> float | None:
    """The scheduled time of ``rec``'s last run; None before its first. A record written before ``last_fired``
    existed counts its ``cursor`` when it moved past the creation time."""
    if "last_fired" in rec:
        value = rec["last_fired"]
        return None if value is None else float(value)
    cursor = rec.get("cursor")
    if cursor is not None and float(cursor) > float(rec.get("created_at") or 0) + 1e-6:
        return float(cursor)
    return None


class Scheduler:
    """Background thread firing due recurring runs through ``fire(recurring, scheduled_at)``.

    ``clock`` (epoch seconds) is injectable for tests; ``run_due(at)`` is one tick.
    """

    def __init__(self, store: Store, fire: Callable[[Record, float], None], tick: float = 0.2,
                 clock: Callable[[], float] = now) -> None:
        self.store = store
        self.fire = fire
        self.tick = tick
        self.clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="kfp-ci-scheduler", daemon=True)
        self._mutex = threading.Lock()
        self._reported: dict[str, str] = {}  # recurring run id -> the last error logged for it

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self.tick):
            try:
                self.run_due(self.clock())
            except Exception as exc:  # the store itself failed (closing): one line, try again next tick
                self._report("*", f"recurring runs: cannot read the store: {type(exc).__name__}: {exc}")

    def run_due(self, at: float) -> None:
        with self._mutex:
            for rec in self.store.list("recurring"):
                if not rec.get("enabled") or rec.get("unschedulable"):
                    continue
                try:
                    self._check(rec, at)
                except Exception as exc:  # this recurring run only; the others go on
                    self._report(str(rec.get("id")), f"recurring run {rec.get('id')} ({rec.get('name')}): "
                                 f"scheduling failed: {type(exc).__name__}: {exc}")
                else:
                    self._reported.pop(str(rec.get("id")), None)

    def _report(self, key: str, message: str) -> None:
        """Log ``message`` once, not on every tick while it repeats."""
        if self._reported.get(key) != message:
            self._reported[key] = message
            log.warning("%s", message)

    def _mark_unschedulable(self, rec: Record, problem: str) -> None:
        message = f"The recurring run cannot be scheduled: {problem}"

        def mark(r: Record) -> None:
            r["unschedulable"] = True
            r["error"] = message
        self.store.update("recurring", rec["id"], mark)
        log.warning("recurring run %s (%s) skipped: %s", rec.get("id"), rec.get("name"), problem)

    def _check(self, rec: Record, at: float) -> None:
        problem = trigger_problem(rec.get("trigger") or {})
        if problem:
            return self._mark_unschedulable(rec, problem)
        due = next_fire(rec, at)
        if due > at:
            return
        active = sum(1 for r in self.store.list("run", parent=rec["id"]) if r.get("state") not in TERMINAL)
        limit = int(rec.get("max_concurrency") or 1)
        state = dict(rec)
        for _ in range(MAX_CATCHUP):
            if due > at or active >= limit:
                return
            self.fire(state, due)
            active += 1
            updated = self.store.update("recurring", rec["id"], functools.partial(_advance, fired=due))
            if updated is None:  # deleted meanwhile
                return
            state["last_fired"] = updated["last_fired"]
            due = next_fire(state, at)


def _advance(r: Record, fired: float) -> None:
    previous = last_fired(r)
    r["last_fired"] = fired if previous is None else max(previous, fired)
    r["cursor"] = r["last_fired"]


def describe_next(rec: Record, at: float | None = None) -> float | None:
    """The next fire time of an enabled, schedulable recurring run (None otherwise), for pages and listings."""
    if not rec.get("enabled") or rec.get("unschedulable"):
        return None
    try:
        t = next_fire(rec, now() if at is None else at)
    except Exception:
        return None
    return None if t == NEVER else t

