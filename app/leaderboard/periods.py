"""The periods a board is kept for, as one table every layer reads (PROTOCOL.md 6).

`all` is the all-time board (the totals document's `total`); every other period is a row of
the table: its API name, the totals document's map of points per period (`days.<day>`), the
key of the period holding a time, when that period ends, and the API parameter that names one
of its ended instances. The repository `$inc`s each row's map, the boards keep one sorted set
per row and key (`lb:<board>:<tag>:<key>`), the flush publishes and resets each row, and acks,
profiles and snapshots list each row: a period added here shows up everywhere.

An ended period stays readable, final, for `history_ms` (BOARD_HISTORY_DAYS) after its end; its
Redis keys live a day longer than that, so a read at the limit still finds them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from app.clock import iso
from app.errors import ProtocolError

DAY_MS = 86_400_000
ALL = "all"
# Keys of an ended period outlive the last moment it is readable by this much.
EXPIRE_SLACK_MS = DAY_MS


def _midnight(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def day_key(ms: int) -> str:
    """The UTC day holding `ms`: "2026-11-30"."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).date().isoformat()


def week_key(ms: int) -> str:
    """The ISO week holding `ms`: "2026-W48"."""
    year, week, _ = datetime.fromtimestamp(ms / 1000, tz=UTC).isocalendar()
    return f"{year:04d}-W{week:02d}"  # zero-padded as ISO 8601 writes it (and as _WEEK reads it)


def _day_end(ms: int) -> int:
    return _ms(_midnight(ms) + timedelta(days=1))


def _week_end(ms: int) -> int:
    day = _midnight(ms)
    return _ms(day + timedelta(days=7 - day.weekday()))


_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}\Z")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})\Z")


def _day_start(key: str) -> int:
    if not _DAY.match(key):
        raise ValueError(key)
    return _ms(datetime.combine(date.fromisoformat(key), datetime.min.time(), tzinfo=UTC))


def _week_start(key: str) -> int:
    match = _WEEK.match(key)
    if not match:
        raise ValueError(key)
    monday = date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
    return _ms(datetime.combine(monday, datetime.min.time(), tzinfo=UTC))


@dataclass(frozen=True)
class Period:
    """One row of the table: a period that starts over."""

    name: str  # the API's name: "daily"
    tag: str  # Redis period keys are "<tag>:<key>": "d:2026-11-30"
    field: str  # the totals document's map of points per key: "days"
    param: str  # the API parameter naming an ended one: "day"
    key: Callable[[int], str]  # the key of the period holding a time
    start: Callable[[str], int]  # when the period a key names starts; ValueError for a malformed key
    end: Callable[[int], int]  # when the period holding a time ends (exclusive)
    span_ms: int  # its longest length

    def period_key(self, ms: int) -> str:
        return f"{self.tag}:{self.key(ms)}"


DAILY = Period("daily", "d", "days", "day", day_key, _day_start, _day_end, DAY_MS)
WEEKLY = Period("weekly", "w", "weeks", "week", week_key, _week_start, _week_end, 7 * DAY_MS)


@dataclass(frozen=True)
class PeriodTable:
    """The periods boards are kept for, beside `all`, and how long ended ones stay readable."""

    timed: tuple[Period, ...] = (DAILY, WEEKLY)
    history_ms: int = 35 * DAY_MS

    def __post_init__(self) -> None:
        names = [p.name for p in self.timed]
        if len(set(names)) != len(names) or ALL in names or len({p.tag for p in self.timed}) != len(names):
            raise ValueError(f"period names and tags must be unique and not {ALL!r}: {names}")

    @property
    def names(self) -> tuple[str, ...]:
        return (ALL, *(p.name for p in self.timed))

    def __iter__(self) -> Iterator[Period]:
        return iter(self.timed)

    def get(self, name: str) -> Period | None:
        """The row of a timed period; None for `all`. KeyError for a name not in the table."""
        if name == ALL:
            return None
        for period in self.timed:
            if period.name == name:
                return period
        raise KeyError(name)

    def find(self, name: str) -> Period | None:
        """The row of a timed period, or None (`all`, or a name the table does not hold)."""
        return next((period for period in self.timed if period.name == name), None)

    def period_key(self, name: str, ms: int) -> str:
        period = self.get(name)
        return ALL if period is None else period.period_key(ms)

    def expire_at(self, period: Period, ms: int) -> int:
        """When the board keys of the period holding `ms` go: after it stopped being readable."""
        return period.end(ms) + self.history_ms + EXPIRE_SLACK_MS

    def publish_expire_at(self, period: Period, ms: int) -> int:
        """When a room's published rows of that period go, if no rollover deleted them first."""
        return period.end(ms) + period.span_ms + DAY_MS

    @property
    def rollover_window_ms(self) -> int:
        """A rollover resets the rooms a standing touched this recently: any room that holds the
        published board of a period that just ended (a room touched during it), with a day for
        a late first flush."""
        return max((p.span_ms for p in self.timed), default=0) + DAY_MS

    def resets_at(self, name: str, now: int) -> str | None:
        period = self.get(name)
        return None if period is None else iso(period.end(now))

    def all_resets_at(self, now: int) -> dict[str, str]:
        return {p.name: iso(p.end(now)) for p in self.timed}

    def ended(self, name: str, param: str, value: str, now: int) -> tuple[str, str]:
        """The period key and the reset time of the ended period `param=value` names, if it is
        still readable; invalid_payload when malformed or not `name`'s parameter, not_found when
        it has not ended yet or ended over `history_ms` ago."""
        period = self.get(name)
        if period is None or period.param != param:
            expected = "" if period is None else f" (period {name} takes `{period.param}`)"
            raise ProtocolError("invalid_payload", f"`{param}` names an ended period of another kind{expected}")
        try:
            start = period.start(value)
        except ValueError:
            raise ProtocolError("invalid_payload", f"`{param}` is not a {period.name} period key: {value!r}") from None
        if period.key(start) != value:
            raise ProtocolError("invalid_payload", f"`{param}` is not a {period.name} period key: {value!r}")
        try:
            end: int | None = period.end(start)
        except OverflowError:  # the calendar's last day or week: it ends past what dates hold
            end = None
        if end is None or end > now:
            raise ProtocolError("not_found", f"{param} {value} has not ended: leave `{param}` out for the live board")
        if now >= end + self.history_ms:
            raise ProtocolError("not_found", f"{param} {value} ended over {self.history_ms // DAY_MS} days ago")
        return period.period_key(start), iso(end)

    def params(self) -> tuple[str, ...]:
        return tuple(p.param for p in self.timed)


STANDARD = PeriodTable()


@dataclass(frozen=True)
class PeriodPoints:
    name: str  # the period's name: "daily"
    key: str  # the period key the points are of: "d:2026-11-30"
    points: int


@dataclass(frozen=True)
class Totals:
    """A player's points at one moment: all-time, per period of the table, and on extra boards
    that keep an all-time board only (board name -> score)."""

    total: int
    periods: tuple[PeriodPoints, ...] = ()
    boards: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, doc: Mapping | None, table: PeriodTable, ms: int, boards: Mapping[str, int] | None = None) -> Totals:
        """From a totals (player) document, for the periods holding `ms`."""
        doc = doc or {}
        return cls(
            total=int(doc.get("total", 0)),
            periods=tuple(PeriodPoints(p.name, p.period_key(ms), int((doc.get(p.field) or {}).get(p.key(ms), 0)))
                          for p in table),
            boards=dict(boards or {}),
        )

    def points(self, name: str) -> int:
        if name == ALL:
            return self.total
        for entry in self.periods:
            if entry.name == name:
                return entry.points
        return 0

    def score(self) -> dict[str, int]:
        """As acks and profiles show it: {"total", "<period>": points, ...}."""
        return {"total": self.total, **{entry.name: entry.points for entry in self.periods}}


def increments(table: PeriodTable, points: int, ms: int) -> dict[str, int]:
    """The totals document's `$inc` for `points` credited at `ms`."""
    return {"total": points, **{f"{p.field}.{p.key(ms)}": points for p in table}}


def ended_keys(doc: Mapping, table: PeriodTable) -> list[str]:
    """Every period key the document has points for (ended periods included), with `all`."""
    return [ALL, *(f"{p.tag}:{key}" for p in table for key in (doc.get(p.field) or {}))]


def readable_ended(doc: Mapping, table: PeriodTable, now: int) -> tuple[PeriodPoints, ...]:
    """The document's points on boards of ended periods still readable at `now`."""
    out = []
    for period in table:
        for key, points in (doc.get(period.field) or {}).items():
            try:
                end = period.end(period.start(key))
            except ValueError:
                continue  # not a key of this period: nothing a board was kept for
            if end <= now < end + table.history_ms and int(points) > 0:
                out.append(PeriodPoints(period.name, f"{period.tag}:{key}", int(points)))
    return tuple(out)
