"""BoardStore against the tests' real redis-server: ordering, versions, pages, around, expiry (PROTOCOL.md 6)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from redis.asyncio import Redis

from app.clock import now_ms
from app.leaderboard.boards import BoardStore, Standing
from app.leaderboard.periods import DAILY, STANDARD, WEEKLY, PeriodPoints, Totals
from tests.support import make_standing

PERIODS = STANDARD.names

DAY = 86_400_000
# Today's UTC midnight: standings stamped today, so period keys expire in the future.
TODAY = now_ms() // DAY * DAY
T = TODAY + 1000


@pytest.fixture
def store(redis_client: Redis) -> BoardStore:
    return BoardStore(redis_client)


def standing(pid: str, version: int, total: int, at: int = T, region: str = "eu", guild: str | None = None,
             daily: int | None = None, weekly: int | None = None, name: str | None = None) -> Standing:
    return make_standing(
        player_id=pid, name=name or pid.upper(), region=region, guild=guild, version=version, total=total,
        daily=total if daily is None else daily, weekly=total if weekly is None else weekly, at_ms=at,
    )


async def around(store: BoardStore, board: str, period: str, player_id: str, limit: int,
                 now: int) -> tuple[list[dict], int]:
    found = await store.around(board, period, player_id, limit, now)
    assert found is not None
    return found


async def ids(store: BoardStore, board: str = "global", period: str = "all", now: int = T) -> list[str]:
    rows, _ = await store.page(board, period, 0, 100, now)
    return [row["player_id"] for row in rows]


async def test_apply_returns_entries_changed(store: BoardStore) -> None:
    assert await store.apply(standing("a", 1, 10)) == 6  # global + region, three periods each
    assert await store.apply(standing("b", 1, 10, guild="g")) == 9  # and the guild board
    # No points today or this week: only the all-time boards hold the player.
    assert await store.apply(standing("c", 1, 10, daily=0, weekly=0)) == 2
    assert await store.apply(standing("d", 1, 10, daily=0, weekly=5)) == 4


async def test_rows_and_order_by_score_then_earlier_reached(store: BoardStore) -> None:
    await store.apply(standing("late", 1, 30, at=T + 300))
    await store.apply(standing("top", 1, 50, at=T + 200))
    await store.apply(standing("early", 1, 30, at=T + 100))
    await store.apply(standing("low", 1, 5, at=T))
    rows, total = await store.page("global", "all", 0, 10, T)
    assert total == 4
    assert rows == [
        {"rank": 1, "player_id": "top", "name": "TOP", "score": 50},
        {"rank": 2, "player_id": "early", "name": "EARLY", "score": 30},
        {"rank": 3, "player_id": "late", "name": "LATE", "score": 30},
        {"rank": 4, "player_id": "low", "name": "LOW", "score": 5},
    ]
    for period in ("daily", "weekly"):
        assert await ids(store, period=period) == ["top", "early", "late", "low"]
    assert await ids(store, board="region:eu") == ["top", "early", "late", "low"]


async def test_tie_goes_to_who_reached_the_score_first_even_with_a_later_id(store: BoardStore) -> None:
    await store.apply(standing("zzz", 1, 10, at=T + 1))
    await store.apply(standing("aaa", 1, 10, at=T + 2))
    assert await ids(store) == ["zzz", "aaa"]
    # aaa passes zzz, then zzz catches up later: aaa reached 20 first.
    await store.apply(standing("aaa", 2, 20, at=T + 3))
    await store.apply(standing("zzz", 2, 20, at=T + 4))
    assert await ids(store) == ["aaa", "zzz"]


async def test_newer_standing_replaces_the_old_entry(store: BoardStore) -> None:
    await store.apply(standing("a", 1, 10, at=T))
    await store.apply(standing("b", 1, 20, at=T + 1))
    assert await store.apply(standing("a", 2, 25, at=T + 2)) == 6
    rows, total = await store.page("global", "all", 0, 10, T)
    assert total == 2
    assert [(r["player_id"], r["score"]) for r in rows] == [("a", 25), ("b", 20)]


async def test_stale_versions_are_ignored(store: BoardStore) -> None:
    await store.apply(standing("a", 3, 30, at=T + 3))
    assert await store.apply(standing("a", 2, 99, at=T + 2)) == 0
    assert await store.apply(standing("a", 1, 10, at=T + 1)) == 0
    rows, total = await store.page("global", "all", 0, 10, T)
    assert total == 1 and rows[0]["score"] == 30
    assert (await store.page("region:eu", "daily", 0, 10, T))[0][0]["score"] == 30


async def test_reapplying_the_same_standing_is_a_no_op(store: BoardStore, redis_client: Redis) -> None:
    s = standing("a", 1, 10, guild="g")
    assert await store.apply(s) == 9

    async def dump() -> dict:
        out: dict[bytes | str, object] = {}
        for key in sorted(await redis_client.keys("lb:*")):
            if await redis_client.type(key) == b"hash":  # the boards' indexes, and the placements
                out[key] = await redis_client.hgetall(key)
            else:
                out[key] = await redis_client.zrange(key, 0, -1, withscores=True)
        return out

    before = await dump()
    assert len(before) == 18 + 1  # and the placements (one server: global's only, no family copies)
    assert await store.apply(s) == 0
    assert await dump() == before


async def test_version_zero_writes_nothing(store: BoardStore) -> None:
    assert await store.apply(standing("a", 0, 10)) == 0
    assert await store.page("global", "all", 0, 10, T) == ([], 0)


async def test_boards_per_region_and_guild(store: BoardStore) -> None:
    await store.apply(standing("e1", 1, 10, region="eu", guild="g1"))
    await store.apply(standing("n1", 1, 20, region="na", guild="g1"))
    await store.apply(standing("n2", 1, 30, region="na"))
    assert await ids(store) == ["n2", "n1", "e1"]
    assert await ids(store, "region:eu") == ["e1"]
    assert await ids(store, "region:na") == ["n2", "n1"]
    assert await ids(store, "guild:g1") == ["n1", "e1"]
    assert await ids(store, "guild:g2") == []
    assert await ids(store, "region:sa") == []


async def test_periods_hold_their_own_scores(store: BoardStore) -> None:
    await store.apply(standing("a", 5, 100, daily=10, weekly=40))
    await store.apply(standing("b", 2, 50, daily=20, weekly=30))
    assert await ids(store, period="all") == ["a", "b"]
    assert await ids(store, period="daily") == ["b", "a"]
    assert await ids(store, period="weekly") == ["a", "b"]
    daily, _ = await store.page("global", "daily", 0, 10, T)
    assert [r["score"] for r in daily] == [20, 10]


async def test_daily_boards_start_over_each_day(store: BoardStore) -> None:
    await store.apply(standing("a", 1, 10, at=T))
    tomorrow = T + DAY
    assert await store.page("global", "daily", 0, 10, tomorrow) == ([], 0)
    assert await ids(store, period="all", now=tomorrow) == ["a"]
    await store.apply(standing("a", 2, 15, at=tomorrow, daily=5, weekly=15))
    rows, _ = await store.page("global", "daily", 0, 10, tomorrow)
    assert [(r["player_id"], r["score"]) for r in rows] == [("a", 5)]
    # Yesterday's board still shows yesterday's score.
    assert (await store.page("global", "daily", 0, 10, T))[0][0]["score"] == 10


async def test_page_offset_and_limit(store: BoardStore) -> None:
    for i in range(10):
        await store.apply(standing(f"p{i}", 1, 100 - i, at=T + i))
    rows, total = await store.page("global", "all", 3, 4, T)
    assert total == 10
    assert [(r["rank"], r["player_id"]) for r in rows] == [(4, "p3"), (5, "p4"), (6, "p5"), (7, "p6")]
    rows, total = await store.page("global", "all", 8, 5, T)
    assert [r["rank"] for r in rows] == [9, 10] and total == 10
    assert await store.page("global", "all", 10, 5, T) == ([], 10)
    assert await store.page("global", "all", 500, 100, T) == ([], 10)
    assert await store.page("region:na", "all", 0, 10, T) == ([], 0)


async def test_rank(store: BoardStore) -> None:
    for i in range(5):
        await store.apply(standing(f"p{i}", 1, 100 - i, at=T + i, region="eu" if i % 2 else "na"))
    for i in range(5):
        assert await store.rank("global", "all", f"p{i}", T) == i + 1
    assert await store.rank("region:eu", "all", "p1", T) == 1
    assert await store.rank("region:eu", "all", "p3", T) == 2
    assert await store.rank("region:na", "daily", "p4", T) == 3
    assert await store.rank("global", "all", "nobody", T) is None
    assert await store.rank("region:eu", "all", "p0", T) is None
    assert await store.rank("global", "daily", "p0", T + DAY) is None


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 5, 9, 10, 11, 30])
async def test_around_keeps_limit_rows_with_the_player_at_the_middle_where_possible(store: BoardStore,
                                                                                     limit: int) -> None:
    count = 10
    for i in range(count):
        await store.apply(standing(f"p{i}", 1, 1000 - i, at=T + i))
    for rank in range(1, count + 1):
        rows, total = await around(store, "global", "all", f"p{rank - 1}", limit, T)
        assert total == count
        assert len(rows) == min(limit, count)
        ranks = [r["rank"] for r in rows]
        assert ranks == list(range(ranks[0], ranks[0] + len(rows)))  # one contiguous slice
        index = ranks.index(rank)
        start = rank - 1 - limit // 2
        if start >= 0 and start + limit <= count:
            assert index == limit // 2, (rank, ranks)
        elif start < 0:
            assert ranks[0] == 1  # near the top: the slice starts at rank 1
        else:
            assert ranks[-1] == count  # near the bottom: the slice ends at the last rank
        assert rows[index]["player_id"] == f"p{rank - 1}"


async def test_around_examples(store: BoardStore) -> None:
    for i in range(10):
        await store.apply(standing(f"p{i}", 1, 1000 - i, at=T + i))
    rows, _ = await around(store, "global", "all", "p4", 4, T)  # rank 5
    assert [r["rank"] for r in rows] == [3, 4, 5, 6]
    rows, _ = await around(store, "global", "all", "p4", 5, T)
    assert [r["rank"] for r in rows] == [3, 4, 5, 6, 7]
    rows, _ = await around(store, "global", "all", "p0", 5, T)
    assert [r["rank"] for r in rows] == [1, 2, 3, 4, 5]
    rows, _ = await around(store, "global", "all", "p9", 5, T)
    assert [r["rank"] for r in rows] == [6, 7, 8, 9, 10]
    rows, _ = await around(store, "global", "all", "p8", 4, T)
    assert [r["rank"] for r in rows] == [7, 8, 9, 10]


async def test_around_a_player_without_an_entry(store: BoardStore) -> None:
    await store.apply(standing("a", 1, 10, region="eu"))
    assert await store.around("global", "all", "nobody", 5, T) is None
    assert await store.around("region:na", "all", "a", 5, T) is None
    assert await store.around("global", "daily", "a", 5, T + DAY) is None


async def test_names(store: BoardStore) -> None:
    await store.apply(standing("a", 1, 10, name="Zoë ☃"))
    assert (await store.page("global", "all", 0, 1, T))[0][0]["name"] == "Zoë ☃"
    await store.set_name("a", "Renamed")
    assert (await store.page("global", "all", 0, 1, T))[0][0]["name"] == "Renamed"
    await store.apply(standing("a", 2, 20, name="Again"))
    assert (await store.page("global", "all", 0, 1, T))[0][0]["name"] == "Again"


async def test_daily_and_weekly_keys_expire_after_their_period_and_its_history(store: BoardStore,
                                                                                redis_client: Redis) -> None:
    await store.apply(standing("a", 1, 10, guild="g"))
    for board in ("global", "region:eu", "guild:g"):
        all_key = store.key(board, "all", T)
        assert await redis_client.ttl(all_key) == -1
        assert await redis_client.ttl(all_key + ":idx") == -1
        # Readable for BOARD_HISTORY_DAYS (35 by default) after the end, then a day's slack.
        for period in (DAILY, WEEKLY):
            key = store.key(board, period.name, T)
            expected = period.end(T) + 36 * DAY
            assert await redis_client.pexpiretime(key) == expected
            assert await redis_client.pexpiretime(key + ":idx") == expected
            assert await redis_client.pttl(key) > 0


def test_keys_name_the_period(store: BoardStore) -> None:
    assert STANDARD.period_key("all", T) == "all"
    assert STANDARD.period_key("daily", 1_795_428_000_000) == "d:2026-11-23"
    assert STANDARD.period_key("weekly", 1_795_428_000_000) == "w:2026-W48"
    assert store.key("region:eu", "daily", 1_795_428_000_000) == "lb:{region:eu}:d:2026-11-23"
    assert store.key("global", "all", 1_795_428_000_000) == "lb:{global}:all"


async def test_top_of_each_period(store: BoardStore) -> None:
    for i in range(4):
        await store.apply(standing(f"p{i}", 1, 10 * (i + 1), at=T + i, daily=i + 1, weekly=0 if i == 0 else 5))
    top = {period: (await store.page("global", period, 0, 2, T))[0] for period in PERIODS}
    assert [r["player_id"] for r in top["all"]] == ["p3", "p2"]
    assert [r["player_id"] for r in top["daily"]] == ["p3", "p2"]
    assert [r["player_id"] for r in top["weekly"]] == ["p1", "p2"]  # equal 5s: p1 reached it first


def test_standing_from_player_document() -> None:
    at = 1_795_428_000_000  # 2026-11-23, ISO week 48
    doc = {
        "_id": "p1", "name": "Ann", "region": "eu", "guild": "g", "actions": 7, "total": 700, "last_ms": at - 5,
        "days": {"2026-11-23": 100, "2026-11-22": 50}, "weeks": {"2026-W48": 150, "2026-W47": 550},
    }
    # The points are those of the periods holding `at`, under those periods' keys.
    totals = Totals(700, (PeriodPoints("daily", "d:2026-11-23", 100), PeriodPoints("weekly", "w:2026-W48", 150)))
    assert Standing.from_player(doc, at) == Standing("p1", "Ann", "eu", "g", 7, totals, at - 5)
    assert Standing.from_player({**doc, "moves": 3}, at).moves == 3
    s = Standing.from_player({"_id": "p2", "name": "Bo", "region": "na"}, at)
    assert (s.guild, s.version, s.total, s.totals.points("daily"), s.totals.points("weekly"), s.at_ms) == (
        None, 0, 0, 0, 0, 0)
    assert s.rooms() == ["region:na"]
    assert Standing.from_player(doc, at).rooms() == ["region:eu", "guild:g"]


def test_standing_survives_the_queue_encoding() -> None:
    for s in (make_standing("p1", "Ann | Ünïcode", "eu", "g", 7, 700, 100, 150, 1_795_428_000_000),
              make_standing("p2", "Bo", "na", None, 1, 1, 0, 0, 5, moves=4)):
        fields = {k.encode(): v.encode() for k, v in s.to_fields().items()}
        assert Standing.from_fields(fields) == s


def test_an_entry_queued_before_moves_were_counted_still_parses() -> None:
    s = make_standing("p1", "Ann", "eu", "g", 7, 700, 100, 150, 1_795_428_000_000, moves=2)
    fields = {k.encode(): v.encode() for k, v in s.to_fields().items() if k != "m"}
    assert Standing.from_fields(fields) == make_standing("p1", "Ann", "eu", "g", 7, 700, 100, 150, 1_795_428_000_000)


def moved(s: Standing, moves: int, region: str | None = None, guild: str | None = None) -> Standing:
    return replace(s, region=region or s.region, guild=guild, moves=moves)


async def test_a_move_takes_the_player_off_every_board_of_its_old_region_and_guild(store: BoardStore) -> None:
    ann = standing("ann", 1, 30, guild="owls")
    await store.apply(ann)
    await store.apply(standing("bob", 1, 20, guild="owls"))
    await store.apply(moved(ann, 1, region="na", guild="hawks"))
    for period in PERIODS:
        assert await ids(store, "region:eu", period) == ["bob"]
        assert await ids(store, "guild:owls", period) == ["bob"]
        assert await ids(store, "region:na", period) == ["ann"]
        assert await ids(store, "guild:hawks", period) == ["ann"]
        assert await ids(store, "global", period) == ["ann", "bob"]
    # Leaving a guild only: the region board keeps its entry.
    await store.apply(moved(ann, 2, region="na", guild=None))
    assert await ids(store, "guild:hawks") == [] and await ids(store, "region:na") == ["ann"]
    # And back where it started: on the old boards again, once.
    await store.apply(moved(ann, 3, region="eu", guild="owls"))
    assert await ids(store, "region:eu") == ["ann", "bob"] and await ids(store, "region:na") == []


async def test_a_standing_from_before_a_move_updates_global_only(store: BoardStore) -> None:
    await store.apply(standing("ann", 1, 10))
    await store.apply(moved(standing("ann", 1, 10), 1, region="na"))
    await store.apply(standing("ann", 2, 50))  # moves 0, region eu: written before the move
    assert (await store.page("global", "all", 0, 10, T))[0][0]["score"] == 50
    assert await ids(store, "region:eu") == []
    assert (await store.page("region:na", "all", 0, 10, T))[0][0]["score"] == 10


async def test_a_move_of_a_player_without_credits_places_nothing(store: BoardStore, redis_client: Redis) -> None:
    assert await store.apply(make_standing("new", "New", "na", None, 0, 0, 0, 0, 0, moves=1)) == 0
    assert await ids(store, "region:na") == [] and await ids(store) == []
    await store.apply(standing("new", 1, 5))  # moves 0: from before that move
    assert await ids(store, "region:eu") == [] and await ids(store) == ["new"]
