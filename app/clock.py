"""Server time: milliseconds, ISO 8601 UTC strings, and the daily/weekly period keys."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def iso(ms: int) -> str:
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def day_key(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).date().isoformat()


def week_key(ms: int) -> str:
    year, week, _ = datetime.fromtimestamp(ms / 1000, tz=UTC).isocalendar()
    return f"{year}-W{week:02d}"


def period_end_ms(period: str, ms: int) -> int:
    """When the daily or weekly period holding `ms` ends (exclusive), in ms."""
    day = datetime.fromtimestamp(ms / 1000, tz=UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "daily":
        end = day + timedelta(days=1)
    else:
        end = day + timedelta(days=7 - day.weekday())
    return int(end.timestamp() * 1000)
