"""The period table (PROTOCOL.md 6): day and week keys and ends, `resets_at` at a turned clock,
ended boards readable for BOARD_HISTORY_DAYS and then not_found, a rebuild that brings ended
boards back, and a period added to the table seen on boards, deltas, acks and profiles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.anticheat.suspensions import Suspensions
from app.clock import iso, now_ms
from app.errors import ProtocolError
from app.leaderboard.boards import BoardStore
from app.leaderboard.feed import RoomFeed
from app.leaderboard.flusher import Flusher
from app.leaderboard.lease import FlushLease
from app.leaderboard.periods import DAILY, WEEKLY, PeriodTable, day_key, week_key
from app.leaderboard.queue import DeltaQueue
from app.leaderboard.reads import LeaderboardReads
from app.leaderboard.rebuild import rebuild_boards
from tests.support import make_standing


def ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp() * 1000)


DAY = 86_400_000
HOUR = 3_600_000


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
    assert DAILY.end(value) == end


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
    assert WEEKLY.end(value) == end


def test_period_end_agrees_with_the_period_keys() -> None:
    start = ms(2026, 12, 20)
    for hour in range(0, 24 * 21, 5):
        value = start + hour * 3_600_000 + 123
        day_end = DAILY.end(value)
        assert day_key(day_end - 1) == day_key(value) != day_key(day_end)
        assert 0 < day_end - value <= DAY
        week_end = WEEKLY.end(value)
        assert week_key(week_end - 1) == week_key(value) != week_key(week_end)
        assert 0 < week_end - value <= 7 * DAY
        assert datetime.fromtimestamp(week_end / 1000, tz=UTC).weekday() == 0
        assert datetime.fromtimestamp(week_end / 1000, tz=UTC) - timedelta(days=7) <= datetime.fromtimestamp(
            value / 1000, tz=UTC
        )


# ---------------------------------------------------------------- resets_at


class Clock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


class Silent:
    async def to_room(self, room: str, event: str, payload: dict) -> None:
        pass


@pytest.mark.parametrize(
    ("now", "daily", "weekly"),
    [
        (ms(2026, 11, 28, 12), "2026-11-29T00:00:00.000Z", "2026-11-30T00:00:00.000Z"),  # a Saturday
        # Sunday's last millisecond
        (ms(2026, 11, 29, 23, 59, 59) + 999, "2026-11-30T00:00:00.000Z", "2026-11-30T00:00:00.000Z"),
        (ms(2026, 11, 30), "2026-12-01T00:00:00.000Z", "2026-12-07T00:00:00.000Z"),  # Monday midnight
        (ms(2026, 11, 30) + 1, "2026-12-01T00:00:00.000Z", "2026-12-07T00:00:00.000Z"),
        (ms(2026, 12, 1, 23, 59, 59) + 999, "2026-12-02T00:00:00.000Z", "2026-12-07T00:00:00.000Z"),
        (ms(2026, 12, 31, 23), "2027-01-01T00:00:00.000Z", "2027-01-04T00:00:00.000Z"),  # across a year
    ],
)
async def test_resets_at_in_reads_and_snapshots_at_a_turned_clock(redis, now: int, daily: str, weekly: str) -> None:
    clock = Clock(now)
    boards = BoardStore(redis)
    reads = LeaderboardReads(boards, clock=clock)
    for period, expected in (("all", None), ("daily", daily), ("weekly", weekly)):
        answer = await reads.get("global", period, 10, 0, None)
        assert answer["resets_at"] == expected, period
    snapshot = await RoomFeed(redis, boards, clock=clock).snapshot("region:eu")
    assert snapshot["resets_at"] == {"daily": daily, "weekly": weekly}


# ---------------------------------------------------------------- ended boards

# Yesterday by the real clock, so that Redis (which expires keys by its own clock) keeps the
# boards while the tests turn the service's clock over the history.
YESTERDAY = now_ms() // DAY * DAY - DAY


async def put_yesterday(redis) -> BoardStore:
    boards = BoardStore(redis)
    for i, (pid, points) in enumerate([("ann", 30), ("bob", 20), ("cid", 20)]):
        await boards.apply(make_standing(pid, pid.upper(), "eu", None, 1, points, points, points, YESTERDAY + 1000 + i))
    return boards


async def test_an_ended_day_is_readable_final_until_board_history_days_then_not_found(redis) -> None:
    boards = await put_yesterday(redis)
    day, week = day_key(YESTERDAY), week_key(YESTERDAY)
    end = DAILY.end(YESTERDAY)
    clock = Clock(end)
    reads = LeaderboardReads(boards, clock=clock)
    for at in (end, end + DAY, end + 35 * DAY - 1):
        clock.ms = at
        answer = await reads.get("region:eu", "daily", 10, 0, None, day=day)
        assert [r["player_id"] for r in answer["entries"]] == ["ann", "bob", "cid"]
        assert answer["total_players"] == 3 and answer["day"] == day
        assert answer["resets_at"] == iso(end)  # when it ended
        around = await reads.get("region:eu", "daily", 1, 0, "cid", day=day)
        assert around["entries"] == [{"rank": 3, "player_id": "cid", "name": "CID", "score": 20}]
    # Today's board is another one: nobody has points today.
    clock.ms = end + DAY
    assert (await reads.get("region:eu", "daily", 10, 0, None))["entries"] == []
    clock.ms = end + 35 * DAY
    with pytest.raises(ProtocolError) as err:
        await reads.get("region:eu", "daily", 10, 0, None, day=day)
    assert err.value.code == "not_found"
    # The week it was in: readable once that week has ended, for as long.
    week_end = WEEKLY.end(YESTERDAY)
    clock.ms = week_end + 35 * DAY - 1
    answer = await reads.get("global", "weekly", 10, 0, None, week=week)
    assert [r["player_id"] for r in answer["entries"]] == ["ann", "bob", "cid"]
    clock.ms = week_end + 35 * DAY
    with pytest.raises(ProtocolError) as err:
        await reads.get("global", "weekly", 10, 0, None, week=week)
    assert err.value.code == "not_found"


async def test_a_day_not_ended_is_not_found_and_a_malformed_one_invalid(redis) -> None:
    now = ms(2026, 11, 30, 12)
    reads = LeaderboardReads(BoardStore(redis), clock=Clock(now))
    # The calendar's edges too: its last day and week (which end past what a date holds), and
    # weeks of years written with leading zeros, as ISO 8601 writes them.
    for period, param, value in (("daily", "day", "2026-11-30"), ("daily", "day", "2026-12-05"),
                                 ("weekly", "week", "2026-W49"), ("weekly", "week", "2027-W01"),
                                 ("daily", "day", "9999-12-31"), ("weekly", "week", "9999-W52"),
                                 ("daily", "day", "0001-01-01"), ("weekly", "week", "0001-W01"),
                                 ("weekly", "week", "0999-W01")):
        with pytest.raises(ProtocolError) as err:
            await reads.get("global", period, 10, 0, None, **{param: value})
        assert err.value.code == "not_found", value
    assert (await reads.get("global", "daily", 10, 0, None, day="2026-11-29"))["entries"] == []
    assert (await reads.get("global", "weekly", 10, 0, None, week="2026-W48"))["entries"] == []
    for period, param, value in (("daily", "day", "2026-11-31"), ("daily", "day", "2026/11/29"),
                                 ("daily", "day", "29-11-2026"), ("daily", "week", "2026-W48"),
                                 ("weekly", "week", "2026-W54"), ("weekly", "week", "2026-48"),
                                 ("weekly", "day", "2026-11-29"), ("all", "day", "2026-11-29"),
                                 ("weekly", "week", "2026-W1")):
        with pytest.raises(ProtocolError) as err:
            await reads.get("global", period, 10, 0, None, **{param: value})
        assert err.value.code == "invalid_payload", (period, param, value)
    with pytest.raises(ProtocolError) as err:
        await reads.get("global", "daily", 10, 0, None, day="2026-11-29", week="2026-W48")
    assert err.value.code == "invalid_payload"
    with pytest.raises(ProtocolError) as err:
        await reads.get("global", "hourly", 10, 0, None)
    assert err.value.code == "invalid_payload"


async def test_board_history_days_sets_how_long_ended_boards_stay(redis) -> None:
    boards = await put_yesterday(redis)
    short = BoardStore(redis, PeriodTable(history_ms=2 * DAY))
    end = DAILY.end(YESTERDAY)
    reads = LeaderboardReads(short, clock=Clock(end + 2 * DAY - 1))
    assert (await reads.get("global", "daily", 10, 0, None, day=day_key(YESTERDAY)))["total_players"] == 3
    reads = LeaderboardReads(short, clock=Clock(end + 2 * DAY))
    with pytest.raises(ProtocolError):
        await reads.get("global", "daily", 10, 0, None, day=day_key(YESTERDAY))
    del boards


async def test_a_rebuild_from_mongodb_brings_ended_boards_back_and_never_reorders_one(redis, repo) -> None:
    boards = await put_yesterday(redis)
    day = day_key(YESTERDAY)
    # MongoDB holds every player's points per day; Redis lost yesterday's board of region eu for
    # dot only (dot's standing never reached it), and the others' stay as they were: bob
    # reached 20 before cid, whatever their ids say.
    docs = [{"_id": pid, "name": pid.upper(), "region": "eu", "actions": 1, "total": points, "last_ms": YESTERDAY + i,
             "days": {day: points}, "weeks": {week_key(YESTERDAY): points}}
            for i, (pid, points) in enumerate([("ann", 30), ("cid", 20), ("bob", 20), ("dot", 25)])]
    await repo.players.insert_many(docs)
    queue = DeltaQueue(redis)
    await queue.ensure_group()
    lease = FlushLease(redis, "me", 60_000)
    assert await lease.acquire()
    assert await rebuild_boards(repo, boards, queue, Suspensions(redis)) == 4
    await Flusher(redis, queue, boards, lease, Silent(), 10).flush_once()
    reads = LeaderboardReads(boards)
    for board in ("global", "region:eu"):
        answer = await reads.get(board, "daily", 10, 0, None, day=day)
        assert [(r["player_id"], r["score"]) for r in answer["entries"]] == [
            ("ann", 30), ("dot", 25), ("bob", 20), ("cid", 20)], board
    # Twice: the same.
    assert await rebuild_boards(repo, boards, queue, Suspensions(redis)) == 4
    await Flusher(redis, queue, boards, lease, Silent(), 10).flush_once()
    answer = await reads.get("region:eu", "daily", 10, 0, None, day=day)
    assert [r["player_id"] for r in answer["entries"]] == ["ann", "dot", "bob", "cid"]


async def test_ended_boards_over_http_and_socket(app_url, http, connect) -> None:
    yesterday = day_key(now_ms() - DAY)
    async with http.get(f"{app_url}/api/v1/leaderboards/global", params={"period": "daily", "day": yesterday}) as resp:
        assert resp.status == 200
        body = await resp.json()
        assert body["entries"] == [] and body["day"] == yesterday and body["resets_at"].endswith("T00:00:00.000Z")
    for params, status in (({"period": "daily", "day": day_key(now_ms())}, 404),
                           ({"period": "daily", "day": day_key(now_ms() - 40 * DAY)}, 404),
                           ({"period": "daily", "day": "yesterday"}, 400),
                           ({"period": "weekly", "day": yesterday}, 400),
                           ({"period": "weekly", "week": week_key(now_ms())}, 404)):
        async with http.get(f"{app_url}/api/v1/leaderboards/global", params=params) as resp:
            assert resp.status == status, (params, await resp.text())
    spectator = await connect()
    answer = await spectator.call("leaderboard:get", {"board": "global", "period": "weekly",
                                                      "week": week_key(now_ms() - 7 * DAY)})
    assert answer["ok"] and answer["entries"] == [], answer
    answer = await spectator.call("leaderboard:get", {"board": "global", "period": "daily", "day": "2026-13-01"})
    assert answer["error"]["code"] == "invalid_payload"
