"""Recurring runs: fire cron (robfig/cron v1, seconds first) and periodic triggers in UTC.

Honours ``max_concurrency`` (a due trigger waits while that many of its runs are active), ``no_catchup``
(only the latest missed trigger fires), start/end times and enable/disable. The run itself is created by a
callback, which resolves always-latest recurring runs to the newest version at each trigger.
"""

from __future__ import annotations

import logging
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
MAX_CATCHUP = 20
log = logging.getLogger("kfp_ci.local")


def cron_error(expr: str) -> str:
    """KFP's 400 message for an unparseable cron, or '' when robfig/cron v1 would accept ``expr``."""
    try:
        parse_cron(expr)
    except ValueError as exc:
        return (f"Schedule cron is not a supported format(https://godoc.org/github.com/robfig/cron). "
                f"Error: {exc}")
    return ""


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


def next_after(trigger: Record, after: float) -> float:
    """The first fire time strictly after ``after`` (epoch seconds, UTC)."""
    interval = float(trigger.get("interval") or 0)
    base = float(trigger.get("start") or 0)
    if trigger.get("cron"):
        spec, every = parse_cron(str(trigger["cron"]))
        if not spec:
            interval = every
        else:
            start = datetime.fromtimestamp(max(after, base - 1), tz=timezone.utc)
            return float(croniter(spec, start, second_at_beginning=True).get_next(float))
    if interval <= 0:
        return float("inf")
    origin = base if base else float(trigger.get("origin") or after)
    if after < origin:
        return origin
    steps = int((after - origin) // interval) + 1
    return origin + steps * interval


class Scheduler:
    """Background thread firing due recurring runs through ``fire(recurring, scheduled_at)``."""

    def __init__(self, store: Store, fire: Callable[[Record, float], None], tick: float = 0.2) -> None:
        self.store = store
        self.fire = fire
        self.tick = tick
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="kfp-ci-scheduler", daemon=True)
        self._mutex = threading.Lock()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self.tick):
            try:
                self.run_due(now())
            except Exception:  # keep scheduling; a broken record must not stop the others
                log.exception("recurring runs: scheduling failed")

    def run_due(self, at: float) -> None:
        with self._mutex:
            for rec in self.store.list("recurring"):
                if rec.get("enabled"):
                    self._check(rec, at)

    def _check(self, rec: Record, at: float) -> None:
        trigger = rec["trigger"]
        end = trigger.get("end")
        cursor = float(rec.get("cursor") or rec["created_at"])
        due: list[float] = []
        t = next_after(trigger, cursor)
        while t <= at and (not end or t <= float(end)) and len(due) < 10_000:
            due.append(t)
            t = next_after(trigger, t)
        if not due:
            return
        if rec.get("no_catchup"):
            due = due[-1:]
        active = sum(1 for r in self.store.list("run", parent=rec["id"]) if r.get("state") not in TERMINAL)
        room = max(0, int(rec.get("max_concurrency") or 1) - active)
        fired = due[: min(room, MAX_CATCHUP)]
        for scheduled_at in fired:
            self.fire(rec, scheduled_at)
        if not fired:
            return
        new_cursor = due[-1] if rec.get("no_catchup") else fired[-1]

        def advance(r: Record) -> None:
            r["cursor"] = max(float(r.get("cursor") or 0), new_cursor)
        self.store.update("recurring", rec["id"], advance)
