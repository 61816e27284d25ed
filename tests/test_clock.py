"""Server time: ISO 8601 UTC strings (PROTOCOL.md 1). The day and week keys: tests/leaderboard/test_periods.py."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from app.clock import iso, now_ms


def ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp() * 1000)




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
