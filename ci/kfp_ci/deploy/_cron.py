"""Cron and interval schedules: validation, conversion to KFP's form, next fire times.

KFP's scheduler parses cron with ``robfig/cron`` v1: six fields, **seconds first**
(``sec min hour day-of-month month day-of-week``). A standard 5-field expression given to KFP is silently
read seconds-first (``0 2 * * *`` would fire at minute 2 of every hour), so kfp-ci converts: 5 fields are
standard cron (``min hour dom month dow``) and get ``0`` seconds prepended; 6 fields are taken as KFP's form.
Macros (``@hourly``, ``@daily``, ``@weekly``, ``@monthly``, ``@yearly``) are expanded; ``@every 90m`` is an
interval. All times are UTC, as KFP's controller uses by default.

The next fire times are computed here (no croniter needed), so ``kfp-ci deploy`` runs with core deps only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from kfp_ci.errors import UsageError

__all__ = ["Schedule", "next_fire_times", "parse_every", "parse_schedule", "refuse_empty"]

_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
_MACROS = {
    "@yearly": "0 0 0 1 1 *",
    "@annually": "0 0 0 1 1 *",
    "@monthly": "0 0 0 1 * *",
    "@weekly": "0 0 0 * * 0",
    "@daily": "0 0 0 * * *",
    "@midnight": "0 0 0 * * *",
    "@hourly": "0 0 * * * *",
}
# (name, low, high, names for aliases, offset of names[0])
_FIELDS: list[tuple[str, int, int, list[str] | None, int]] = [
    ("second", 0, 59, None, 0),
    ("minute", 0, 59, None, 0),
    ("hour", 0, 23, None, 0),
    ("day of month", 1, 31, None, 0),
    ("month", 1, 12, _MONTHS, 1),
    ("day of week", 0, 7, _DAYS, 0),
]
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_INTERVAL = 366 * 86400
"""The longest ``--every``: one (leap) year."""


@dataclass(frozen=True, slots=True)
class Schedule:
    """A validated schedule: exactly one of ``cron`` (KFP 6-field form) or ``interval_seconds``."""

    cron: str | None = None
    interval_seconds: int | None = None
    source: str = ""
    """What the user wrote."""

    def describe(self) -> str:
        if self.cron is not None:
            return f"cron '{self.cron}' (UTC)" + (f" from '{self.source}'" if self.source != self.cron else "")
        return f"every {format_interval(self.interval_seconds or 0)}"

    def trigger(self) -> dict[str, object]:
        """The KFP v2beta1 ``trigger`` object (start time left to the server)."""
        if self.cron is not None:
            return {"cron_schedule": {"cron": self.cron}}
        return {"periodic_schedule": {"interval_second": str(self.interval_seconds)}}


def format_interval(seconds: int) -> str:
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


def parse_every(text: str) -> int:
    """``30m``, ``6h``, ``1d``, ``1h30m``, ``90s``, or a plain number of seconds -> seconds (>= 1)."""
    raw = text.strip().lower()
    if raw.isdigit():
        seconds = int(raw)
    else:
        parts = re.findall(r"(\d+)\s*([smhdw])", raw)
        if not parts or re.sub(r"\d+\s*[smhdw]", "", raw).strip():
            raise UsageError(f"--every {text!r} is not a duration: use e.g. 30m, 6h, 1d or 1h30m")
        seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds < 1:
        raise UsageError(f"--every {text!r} must be at least one second")
    if seconds > MAX_INTERVAL:
        raise UsageError(f"--every {text!r} is longer than {MAX_INTERVAL // 86400} days: a recurring run that "
                         "rarely fires is better a cron (e.g. --schedule '@yearly')")
    return seconds


def refuse_empty(cron: str | None, every: str | None) -> None:
    """``--schedule ''`` or ``--every ''`` (given, but blank) is an error, never "no schedule"."""
    if cron is not None and not cron.strip():
        raise UsageError("--schedule is empty: give a cron expression, e.g. --schedule '0 3 * * *'")
    if every is not None and not every.strip():
        raise UsageError("--every is empty: give a duration, e.g. --every 6h")


def parse_schedule(cron: str | None = None, every: str | None = None) -> Schedule:
    """Validate ``--schedule`` / ``--every`` (exactly one) into a :class:`Schedule`."""
    refuse_empty(cron, every)
    if cron and every:
        raise UsageError("--schedule and --every are exclusive; give one")
    if every:
        return Schedule(interval_seconds=parse_every(every), source=every)
    if not cron:
        raise UsageError("give a schedule: --schedule CRON or --every DURATION")
    schedule = Schedule(cron=to_kfp_cron(cron), source=cron.strip())
    if not next_fire_times(schedule, count=1):
        raise UsageError(f"cron {cron.strip()!r} never fires (no such date in any year, e.g. 31 February): "
                         "check the day-of-month and month fields")
    return schedule


def to_kfp_cron(expr: str) -> str:
    """Validate a cron expression and return KFP's 6-field seconds-first form."""
    text = " ".join(expr.split())
    lowered = text.lower()
    if lowered.startswith("@every"):
        raise UsageError(f"cron {expr!r}: use --every DURATION for intervals")
    if lowered.startswith("@"):
        if lowered not in _MACROS:
            raise UsageError(f"cron {expr!r}: unknown macro (use @hourly, @daily, @weekly, @monthly or @yearly)")
        return _MACROS[lowered]
    fields = text.split(" ")
    if len(fields) == 5:
        fields = ["0", *fields]
    elif len(fields) != 6:
        raise UsageError(
            f"cron {expr!r} has {len(fields)} fields: use 5 (minute hour day month weekday) "
            "or 6 (second first, KFP's form)"
        )
    out = []
    for index, value in enumerate(fields):
        _parse_field(value, index, expr)
        out.append(_normalise_field(value, index))
    return " ".join(out)


def _normalise_field(value: str, index: int) -> str:
    # robfig/cron v1 knows day-of-week 0-6 only: spell a field using 7 (Sunday) as the explicit list.
    if index == 5 and "7" in re.findall(r"\d+", value):
        return ",".join(str(v) for v in sorted(_parse_field(value, 5, value)))
    return value.upper() if re.search(r"[a-zA-Z]", value) else value


def _number(token: str, index: int, expr: str) -> int:
    name, low, high, names, offset = _FIELDS[index]
    if names and token.upper() in names:
        return names.index(token.upper()) + offset
    if not token.isdigit():
        raise UsageError(f"cron {expr!r}: {token!r} is not a valid {name}")
    number = int(token)
    if not low <= number <= high:
        raise UsageError(f"cron {expr!r}: {name} {number} is out of range {low}-{high}")
    return number


def _parse_field(value: str, index: int, expr: str) -> frozenset[int]:
    name, low, high, _names, _offset = _FIELDS[index]
    result: set[int] = set()
    for part in value.split(","):
        if not part:
            raise UsageError(f"cron {expr!r}: empty item in the {name} field")
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) < 1:
                raise UsageError(f"cron {expr!r}: step {step_text!r} in the {name} field must be a positive number")
            step = int(step_text)
        if base in ("*", "?"):
            if base == "?" and index not in (3, 5):
                raise UsageError(f"cron {expr!r}: '?' is only allowed for day of month or day of week")
            start, end = low, high
        elif "-" in base:
            left, _, right = base.partition("-")
            start, end = _number(left, index, expr), _number(right, index, expr)
            if start > end:
                raise UsageError(f"cron {expr!r}: range {base!r} in the {name} field goes backwards")
        else:
            start = _number(base, index, expr)
            end = high if slash else start
        values = set(range(start, end + 1, step))
        if index == 5:
            values = {v % 7 for v in values}
        result |= values
    return frozenset(result)


@dataclass(frozen=True, slots=True)
class _Compiled:
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    dom_star: bool
    dow_star: bool

    def day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        dom_ok = day.day in self.days
        dow_ok = (day.isoweekday() % 7) in self.weekdays
        if self.dom_star or self.dow_star:  # one side unrestricted: both must hold (the other is all)
            return dom_ok and dow_ok
        return dom_ok or dow_ok  # both restricted: either (classic cron rule, robfig too)


def _compile(kfp_cron: str) -> _Compiled:
    fields = kfp_cron.split(" ")
    sets = [_parse_field(value, i, kfp_cron) for i, value in enumerate(fields)]
    return _Compiled(
        seconds=tuple(sorted(sets[0])),
        minutes=tuple(sorted(sets[1])),
        hours=tuple(sorted(sets[2])),
        days=sets[3],
        months=sets[4],
        weekdays=sets[5],
        dom_star=fields[3].startswith(("*", "?")),
        dow_star=fields[5].startswith(("*", "?")),
    )


def _cron_times(kfp_cron: str, after: datetime) -> Iterator[datetime]:
    spec = _compile(kfp_cron)
    day = after.date()
    last = day + timedelta(days=366 * 9)  # covers leap days across a skipped century leap year
    while day <= last:
        if spec.day_matches(day):
            for hour in spec.hours:
                if day == after.date() and hour < after.hour:
                    continue
                for minute in spec.minutes:
                    for second in spec.seconds:
                        when = datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=timezone.utc)
                        if when > after:
                            yield when
        day += timedelta(days=1)


def next_fire_times(schedule: Schedule, after: datetime | None = None, count: int = 3) -> list[datetime]:
    """The next ``count`` UTC fire times strictly after ``after`` (default: now).

    For intervals, KFP fires every ``interval_seconds`` from the start time; the start is taken as ``after``.
    An expression that never fires (e.g. 30 February) gives an empty list.
    """
    start = (after or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(microsecond=0)
    if schedule.interval_seconds is not None:
        step = timedelta(seconds=schedule.interval_seconds)
        return [start + step * (i + 1) for i in range(count)]
    result: list[datetime] = []
    for when in _cron_times(schedule.cron or "", start):
        result.append(when)
        if len(result) == count:
            break
    return result
