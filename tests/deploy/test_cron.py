"""Cron and interval schedules as users write them: converted to KFP's form, validated, next fire times."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from kfp_ci.deploy._cron import Schedule, next_fire_times, parse_every, parse_schedule
from kfp_ci.errors import UsageError

UTC = timezone.utc


@pytest.mark.parametrize(
    ("given", "kfp"),
    [
        ("0 2 * * *", "0 0 2 * * *"),
        ("*/15 9-17 * * mon-fri", "0 */15 9-17 * * MON-FRI"),
        ("0 0 3 * * *", "0 0 3 * * *"),
        ("@daily", "0 0 0 * * *"),
        ("@hourly", "0 0 * * * *"),
        ("0 0 * * 7", "0 0 0 * * 0"),
        ("0 0 * * 5-7", "0 0 0 * * 0,5,6"),
        ("  30   4 1 JAN ? ", "0 30 4 1 JAN ?"),
    ],
)
def test_standard_cron_is_converted_to_kfp_seconds_first(given: str, kfp: str) -> None:
    assert parse_schedule(given).cron == kfp


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("0 2 * *", "has 4 fields"),
        ("61 * * * *", "minute 61 is out of range 0-59"),
        ("0 25 * * *", "hour 25 is out of range"),
        ("x * * * *", "'x' is not a valid minute"),
        ("*/0 * * * *", "step '0'"),
        ("5-1 * * * *", "goes backwards"),
        ("@fortnightly", "unknown macro"),
        ("0 ? * * *", "'?' is only allowed"),
    ],
)
def test_invalid_cron_is_one_clear_usage_error(given: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_schedule(given)
    assert message in str(info.value)
    assert info.value.exit_code == 2


def test_next_three_fire_times_in_utc() -> None:
    after = datetime(2026, 1, 1, 5, 0, tzinfo=UTC)
    assert next_fire_times(parse_schedule("0 2 * * *"), after) == [
        datetime(2026, 1, 2, 2, 0, tzinfo=UTC),
        datetime(2026, 1, 3, 2, 0, tzinfo=UTC),
        datetime(2026, 1, 4, 2, 0, tzinfo=UTC),
    ]
    # Friday 17:50 -> next weekday working slots are on Monday.
    friday = datetime(2026, 1, 2, 17, 50, tzinfo=UTC)
    assert next_fire_times(parse_schedule("*/15 9-17 * * MON-FRI"), friday) == [
        datetime(2026, 1, 5, 9, 0, tzinfo=UTC),
        datetime(2026, 1, 5, 9, 15, tzinfo=UTC),
        datetime(2026, 1, 5, 9, 30, tzinfo=UTC),
    ]


def test_day_of_month_and_weekday_both_restricted_fire_on_either() -> None:
    # 13th of the month OR a Friday, at midnight (classic cron rule).
    after = datetime(2026, 2, 10, 0, 0, tzinfo=UTC)  # Tuesday
    times = next_fire_times(parse_schedule("0 0 13 * 5"), after)
    assert [t.day for t in times] == [13, 20, 27]  # Feb 13 is a Friday, then Fridays 20 and 27
    times = next_fire_times(parse_schedule("0 0 1 * 1"), datetime(2026, 3, 1, 1, tzinfo=UTC))
    assert [t.date().isoformat() for t in times] == ["2026-03-02", "2026-03-09", "2026-03-16"]


def test_seconds_field_and_leap_day() -> None:
    after = datetime(2026, 6, 1, tzinfo=UTC)
    times = next_fire_times(parse_schedule("0 0 29 2 *"), after, count=2)
    assert [t.year for t in times] == [2028, 2032]
    times = next_fire_times(parse_schedule("*/20 * * * * *"), datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC))
    assert [t.second for t in times] == [40, 0, 20]
    assert next_fire_times(Schedule(cron="0 0 0 30 2 *"), after) == []
    with pytest.raises(UsageError, match="never fires"):  # so kfp-ci refuses it before creating anything
        parse_schedule("0 0 30 2 *")


@pytest.mark.parametrize(("text", "seconds"), [("30m", 1800), ("6h", 21600), ("1d", 86400), ("1h30m", 5400),
                                               ("90", 90), ("2w", 1209600)])
def test_every_durations(text: str, seconds: int) -> None:
    assert parse_every(text) == seconds
    schedule = parse_schedule(every=text)
    assert schedule.trigger() == {"periodic_schedule": {"interval_second": str(seconds)}}


@pytest.mark.parametrize("text", ["soon", "5x", "0m", "1h junk"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(UsageError, match="--every"):
        parse_every(text)


def test_schedule_and_every_are_exclusive_and_one_is_needed() -> None:
    with pytest.raises(UsageError, match="exclusive"):
        parse_schedule("@daily", "1h")
    with pytest.raises(UsageError, match="give a schedule"):
        parse_schedule(None, None)


def test_interval_fire_times_step_from_now() -> None:
    after = datetime(2026, 1, 1, tzinfo=UTC)
    assert [t.hour for t in next_fire_times(parse_schedule(every="6h"), after)] == [6, 12, 18]
