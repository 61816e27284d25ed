"""Server time: ISO 8601 UTC strings and the UTC-day / ISO-week period keys (PROTOCOL.md 1, 6)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from app.clock import day_key, iso, now_ms, period_end_ms, week_key


def ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp() * 1000)


DAY = 86_400_000


def test_now_ms_is_the_wall_clock_in_ms() -> None:
    before = int(time.time() * 1000)
    value = now_ms()
    after = int(time.time() * 1000)
    assert isinstance(value, int)
    assert before - 1 <= value <= after + 1


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (ms(2026, 11, 23, 10), "2026-11-23T10:00:00.000Z"),
        (ms(2026, 11, 23, 10) + 7, "2026-11-23T10:00:00.007Z"),
        (ms(2026, 11, 23, 10) + 120, "2026-11-23T10:00:00.120Z"),
        (ms(2026, 11, 23, 23, 59, 59) + 999, "2026-11-23T23:59:59.999Z"),
        (ms(2027, 1, 1), "2027-01-01T00:00:00.000Z"),
        (0, "1970-01-01T00:00:00.000Z"),
        (ms(2028, 2, 29, 12, 30, 5) + 50, "2028-02-29T12:30:05.050Z"),
    ],
)
def test_iso(value: int, text: str) -> None:
    assert iso(value) == text


def test_iso_round_trips_through_datetime() -> None:
    for value in (1_795_428_000_999, 1_795_428_059_999, 1_700_000_000_001, 1_799_999_999_999):
        parsed = datetime.strptime(iso(value), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        assert int(parsed.timestamp() * 1000) == value


def test_iso_of_every_millisecond_in_a_second_boundary() -> None:
    base = ms(2026, 12, 31, 23, 59, 59)
    for extra in range(1000):
        assert iso(base + extra) == f"2026-12-31T23:59:59.{extra:03d}Z"
    assert iso(base + 1000) == "2027-01-01T00:00:00.000Z"


@pytest.mark.parametrize(
    ("value", "key"),
    [
        (ms(2026, 11, 23), "2026-11-23"),
        (ms(2026, 11, 23) - 1, "2026-11-22"),
        (ms(2026, 11, 23, 23, 59, 59) + 999, "2026-11-23"),
        (ms(2027, 1, 1), "2027-01-01"),
    ],
)
def test_day_key_is_the_utc_day(value: int, key: str) -> None:
    assert day_key(value) == key


@pytest.mark.parametrize(
    ("value", "key"),
    [
        (ms(2026, 11, 23), "2026-W48"),  # a Monday
        (ms(2026, 11, 29, 23, 59, 59), "2026-W48"),  # its Sunday
        (ms(2026, 11, 30), "2026-W49"),
        (ms(2026, 1, 1), "2026-W01"),  # a Thursday: week 1 of 2026
        (ms(2025, 12, 29), "2026-W01"),  # that week's Monday, still in 2025
        (ms(2025, 12, 28, 23, 59, 59), "2025-W52"),
        (ms(2026, 12, 31), "2026-W53"),
        (ms(2027, 1, 1), "2026-W53"),  # a Friday in 2026's 53rd week
        (ms(2027, 1, 3, 23, 59, 59), "2026-W53"),
        (ms(2027, 1, 4), "2027-W01"),
        (ms(2024, 12, 30), "2025-W01"),
        (ms(2021, 1, 3), "2020-W53"),
        (ms(2026, 3, 2), "2026-W10"),
    ],
)
def test_week_key_is_the_iso_week(value: int, key: str) -> None:
    assert week_key(value) == key


@pytest.mark.parametrize(
    ("value", "end"),
    [
        (ms(2026, 11, 23, 10), ms(2026, 11, 24)),
        (ms(2026, 11, 23), ms(2026, 11, 24)),
        (ms(2026, 11, 23, 23, 59, 59) + 999, ms(2026, 11, 24)),
        (ms(2026, 12, 31, 12), ms(2027, 1, 1)),
        (ms(2028, 2, 28, 1), ms(2028, 2, 29)),
    ],
)
def test_period_end_daily(value: int, end: int) -> None:
    assert period_end_ms("daily", value) == end


@pytest.mark.parametrize(
    ("value", "end"),
    [
        (ms(2026, 11, 23), ms(2026, 11, 30)),  # Monday 00:00 -> next Monday
        (ms(2026, 11, 25, 15), ms(2026, 11, 30)),
        (ms(2026, 11, 29, 23, 59, 59) + 999, ms(2026, 11, 30)),  # last ms of Sunday
        (ms(2027, 1, 1, 8), ms(2027, 1, 4)),  # across a year boundary
        (ms(2026, 12, 28), ms(2027, 1, 4)),
    ],
)
def test_period_end_weekly(value: int, end: int) -> None:
    assert period_end_ms("weekly", value) == end


def test_period_end_agrees_with_the_period_keys() -> None:
    start = ms(2026, 12, 20)
    for hour in range(0, 24 * 21, 5):
        value = start + hour * 3_600_000 + 123
        day_end = period_end_ms("daily", value)
        assert day_key(day_end - 1) == day_key(value) != day_key(day_end)
        assert 0 < day_end - value <= DAY
        week_end = period_end_ms("weekly", value)
        assert week_key(week_end - 1) == week_key(value) != week_key(week_end)
        assert 0 < week_end - value <= 7 * DAY
        assert datetime.fromtimestamp(week_end / 1000, tz=UTC).weekday() == 0
        assert datetime.fromtimestamp(week_end / 1000, tz=UTC) - timedelta(days=7) <= datetime.fromtimestamp(
            value / 1000, tz=UTC
        )
