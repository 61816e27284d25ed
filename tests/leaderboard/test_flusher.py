"""The flusher against a real Redis: deltas agree with snapshots and with boards built from
scratch, whatever the order standings arrive in; rollover; lease fencing; a redone flush."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from redis.asyncio import Redis

from app.clock import now_ms
from app.leaderboard import keys
from app.leaderboard.boards import BoardStore, Standing
from app.leaderboard.feed import RoomFeed
from app.leaderboard.flusher import Flusher, LeaseLost
from app.leaderboard.lease import FlushLease
from app.leaderboard.periods import STANDARD
from app.leaderboard.queue import DeltaQueue
from tests.support import make_standing

TOP_N = 3
ROOM = "region:eu"


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict]] = []

    async def to_room(self, room: str, event: str, payload: dict) -> None:
        self.sent.append((room, event, payload))


class Rig:
    def __init__(self, redis: Redis, clock) -> None:
        self.redis = redis
        self.boards = BoardStore(redis)
        self.queue = DeltaQueue(redis)
        self.notifier = Recorder()
        self.clock = clock
        self.feed = RoomFeed(redis, self.boards, clock=lambda: self.clock())

    def flusher(self, holder: str) -> Flusher:
        lease = FlushLease(self.redis, holder, 60_000)
        return Flusher(self.redis, self.queue, self.boards, lease, self.notifier, TOP_N, clock=lambda: self.clock())


def apply_delta(model: dict, delta: dict) -> None:
    """What a client does with a delta (PROTOCOL.md section 6)."""
    for period in delta.get("reset", []):
        model["boards"][period] = []
    for period, rows in delta["boards"].items():
        board = {row["rank"]: row for row in model["boards"][period]}
        for row in rows:
            board[row["rank"]] = row
        model["boards"][period] = [board[r] for r in sorted(board) if r <= TOP_N]
    model["seq"] = delta["seq"]


def from_scratch(totals: dict[str, int], reached: dict[str, int]) -> list[dict]:
    order = sorted(totals, key=lambda p: (-totals[p], reached[p]))[:TOP_N]
    return [{"rank": i + 1, "player_id": p, "name": p.upper(), "score": totals[p]} for i, p in enumerate(order)]


async def scenario(url: str, batches: list[list[tuple[int, int]]], permutations: list[list[int]],
                   stale_copies: list[bool], snapshot_at: int) -> None:
    redis = Redis.from_url(url)
    try:
        await redis.flushall()
        base = now_ms()
        rig = Rig(redis, lambda: base)
        await rig.queue.ensure_group()
        flusher = rig.flusher("only")
        assert await FlushLease(redis, "only", 60_000).acquire()
        totals: dict[str, int] = {}
        versions: dict[str, int] = {}
        reached: dict[str, int] = {}
        t = base
        model = None
        history: list[Standing] = []
        for index, batch in enumerate(batches):
            if index == snapshot_at:
                model = await rig.feed.snapshot(ROOM)
            made = []
            for player, points in batch:
                pid = f"p{player}"
                t += 1
                totals[pid] = totals.get(pid, 0) + points
                versions[pid] = versions.get(pid, 0) + 1
                reached[pid] = t
                made.append(make_standing(pid, pid.upper(), "eu", None, versions[pid], totals[pid], totals[pid],
                                     totals[pid], t))
            perm = permutations[index % len(permutations)]
            ordered = sorted(range(len(made)), key=lambda i: perm[i % len(perm)] * 1000 + i)
            for i in ordered:
                await rig.queue.push(made[i])
                if history and stale_copies[i % len(stale_copies)]:
                    await rig.queue.push(history[(i * 7) % len(history)])  # an old, lower version again
            history += made
            await flusher.flush_once()
        if model is None:
            model = await rig.feed.snapshot(ROOM)
        deltas = [p for room, event, p in rig.notifier.sent if room == ROOM and event == "leaderboard:delta"]
        seqs = [d["seq"] for d in deltas]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))) if seqs else True
        for delta in deltas:
            if delta["seq"] > model["seq"]:
                assert delta["seq"] == model["seq"] + 1
                apply_delta(model, delta)
        expected = from_scratch(totals, reached)
        for period in ("all", "daily", "weekly"):
            assert model["boards"][period] == expected, period
        assert (await rig.feed.snapshot(ROOM)) == {"room": ROOM, "seq": model["seq"], "boards": model["boards"],
                                                   "resets_at": STANDARD.all_resets_at(rig.clock())}
        page, count = await rig.boards.page(ROOM, "all", 0, TOP_N, base)
        assert page == expected and count == len(totals)
    finally:
        await redis.aclose()


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batches=st.lists(st.lists(st.tuples(st.integers(0, 5), st.integers(1, 30)), max_size=6), min_size=1, max_size=8),
    permutations=st.lists(st.permutations(list(range(6))), min_size=1, max_size=3),
    stale_copies=st.lists(st.booleans(), min_size=1, max_size=5),
    snapshot_at=st.integers(0, 8),
)
def test_any_interleaving_of_deltas_gives_the_board_from_scratch(redis_proc, batches, permutations, stale_copies,
                                                                 snapshot_at):
    asyncio.run(scenario(redis_proc.url, batches, permutations, stale_copies, snapshot_at))


@pytest.fixture
async def rig(redis_proc):
    redis = Redis.from_url(redis_proc.url)
    await redis.flushall()
    clock = {"now": now_ms()}
    rig = Rig(redis, lambda: clock["now"])
    rig.clock_value = clock
    await rig.queue.ensure_group()
    yield rig
    await redis.aclose()


def standing(pid: str, version: int, points: int, at: int) -> Standing:
    return make_standing(pid, pid, "eu", "owls", version, points, points, points, at)


async def test_period_rollover_sends_reset_with_the_new_board(rig):
    # A Monday 23:59:59 ahead of the real clock: boards of past days expire at once in Redis.
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    monday = today + timedelta(days=7 - today.weekday())
    day = int((monday + timedelta(hours=23, minutes=59, seconds=59)).timestamp() * 1000)
    rig.clock_value["now"] = day
    flusher = rig.flusher("me")
    assert await FlushLease(rig.redis, "me", 60_000).acquire()
    await rig.queue.push(standing("ann", 1, 10, day))
    await flusher.flush_once()
    rig.clock_value["now"] = day + 2000  # 00:00:01 the next day, a Tuesday: same ISO week
    await flusher.flush_once()
    delta = [p for room, _, p in rig.notifier.sent if room == ROOM][-1]
    assert delta["reset"] == ["daily"] and delta["boards"] == {"daily": []}
    snap = await rig.feed.snapshot(ROOM)
    assert snap["boards"]["daily"] == [] and snap["boards"]["all"][0]["score"] == 10
    assert snap["seq"] == delta["seq"]
    await rig.queue.push(standing("bob", 1, 5, day + 3000))
    await flusher.flush_once()
    delta = [p for room, _, p in rig.notifier.sent if room == ROOM][-1]
    assert "reset" not in delta and delta["boards"]["daily"] == [row(1, "bob", 5)]
    # The new day's board expires BOARD_HISTORY_DAYS (35) and a day after that day ends.
    tuesday = monday + timedelta(days=1)
    expires = await rig.redis.execute_command("PEXPIRETIME", keys.board("region:eu", f"d:{tuesday:%Y-%m-%d}"))
    assert expires == int((tuesday + timedelta(days=1 + 35 + 1)).timestamp() * 1000)


async def test_a_fenced_flush_applies_nothing_and_the_next_holder_redoes_it(rig):
    old = rig.flusher("old")
    assert await FlushLease(rig.redis, "old", 60_000).acquire()
    await rig.queue.push(standing("ann", 1, 10, rig.clock()))
    await rig.redis.delete("lb:lease")
    assert await FlushLease(rig.redis, "new", 60_000).acquire()
    with pytest.raises(LeaseLost):
        await old.flush_once()  # read the entry, then was fenced: the entry stays pending
    assert await rig.boards.rank("global", "all", "ann", rig.clock()) is None
    deltas = await rig.flusher("new").flush_once()
    assert [d["boards"]["all"] for d in deltas if d["room"] == ROOM] == [[row(1, "ann", 10)]]
    assert await rig.redis.xlen("lb:queue") == 0
    assert await rig.flusher("new").flush_once() == []  # nothing twice


async def test_one_delta_per_changed_room_and_none_when_nothing_changed(rig):
    flusher = rig.flusher("me")
    assert await FlushLease(rig.redis, "me", 60_000).acquire()
    for v in range(1, 4):
        await rig.queue.push(standing("ann", v, 10 * v, rig.clock() + v))
    deltas = await flusher.flush_once()
    assert sorted(d["room"] for d in deltas) == ["guild:owls", "region:eu"]
    assert all(d["boards"]["all"] == [{"rank": 1, "player_id": "ann", "name": "ann", "score": 30}] for d in deltas)
    await rig.queue.push(standing("ann", 2, 20, rig.clock() + 2))  # stale: changes nothing
    assert await flusher.flush_once() == []


async def test_seq_never_goes_back_when_redis_comes_back_empty(rig):
    flusher = rig.flusher("me")
    assert await FlushLease(rig.redis, "me", 60_000).acquire()
    await rig.queue.push(standing("ann", 1, 10, rig.clock()))
    before = (await flusher.flush_once())[0]["seq"]
    await rig.redis.flushall()
    await rig.queue.ensure_group()
    assert await FlushLease(rig.redis, "me", 60_000).acquire()
    await rig.queue.push(standing("ann", 1, 10, rig.clock()))
    rig.clock_value["now"] += 1
    after = (await flusher.flush_once())[0]["seq"]
    assert after > before


def at(pid: str, version: int, points: int, t: int, region: str = "eu", guild: str | None = "owls",
       moves: int = 0, daily: int | None = None) -> Standing:
    return make_standing(pid, pid, region, guild, version, points, points if daily is None else daily, points, t, moves)


def row(rank: int, pid: str, score: int) -> dict:
    return {"rank": rank, "player_id": pid, "name": pid, "score": score}


async def board_ids(rig, board: str, period: str = "all", now: int | None = None) -> list[str]:
    rows, _ = await rig.boards.page(board, period, 0, 10, rig.clock() if now is None else now)
    return [r["player_id"] for r in rows]


def watched(rig, room: str, snapshot: dict) -> dict:
    """What a watcher holding `snapshot` shows after every delta sent to the room since."""
    model = {"seq": snapshot["seq"], "boards": {p: list(rows) for p, rows in snapshot["boards"].items()},
             "resets_at": snapshot["resets_at"]}
    for sent_room, event, delta in rig.notifier.sent:
        if sent_room == room and event == "leaderboard:delta" and delta["seq"] > model["seq"]:
            assert delta["seq"] == model["seq"] + 1
            apply_delta(model, delta)
    return model


async def test_a_move_is_seen_on_both_boards_and_by_the_watchers_of_both_rooms(rig):
    flusher = rig.flusher("me")
    assert await FlushLease(rig.redis, "me", 60_000).acquire()
    t = rig.clock()
    for i, (pid, points) in enumerate([("ann", 40), ("bob", 30), ("cid", 20), ("dot", 10)]):
        await rig.queue.push(at(pid, 1, points, t + i))
    await rig.queue.push(at("eve", 1, 35, t + 5, region="na", guild=None))
    await flusher.flush_once()
    rooms = ["region:eu", "guild:owls", "region:na", "guild:hawks"]
    before = {room: await rig.feed.snapshot(room) for room in rooms}

    await rig.queue.push(at("ann", 1, 40, t, region="na", guild="hawks", moves=1))
    deltas = {d["room"]: d for d in await flusher.flush_once()}
    assert sorted(deltas) == sorted(rooms)
    # Old rooms: everyone below moves up; four players over TOP_N rows, so dot comes in at 3.
    for room in ("region:eu", "guild:owls"):
        assert "reset" not in deltas[room]
        assert deltas[room]["boards"]["all"] == [row(1, "bob", 30), row(2, "cid", 20), row(3, "dot", 10)]
    assert deltas["region:na"]["boards"]["all"] == [row(1, "ann", 40), row(2, "eve", 35)]
    assert deltas["guild:hawks"]["boards"]["all"] == [row(1, "ann", 40)]
    for room in rooms:
        shown = watched(rig, room, before[room])
        assert shown == {k: v for k, v in (await rig.feed.snapshot(room)).items() if k != "room"}
    for period in ("all", "daily", "weekly"):
        assert await board_ids(rig, "region:eu", period) == ["bob", "cid", "dot"]
        assert await board_ids(rig, "guild:owls", period) == ["bob", "cid", "dot"]
        assert await board_ids(rig, "region:na", period) == ["ann", "eve"]
        assert await board_ids(rig, "guild:hawks", period) == ["ann"]
        assert await board_ids(rig, "global", period) == ["ann", "eve", "bob", "cid", "dot"]


async def test_a_board_left_with_fewer_rows_than_it_showed_goes_out_whole(rig):
    flusher = rig.flusher("me")
    assert await FlushLease(rig.redis, "me", 60_000).acquire()
    t = rig.clock()
    await rig.queue.push(at("ann", 1, 40, t))
    await rig.queue.push(at("bob", 1, 30, t + 1))
    await flusher.flush_once()
    before = await rig.feed.snapshot(ROOM)
    await rig.queue.push(at("ann", 1, 40, t, region="na", moves=1))
    delta = {d["room"]: d for d in await flusher.flush_once()}[ROOM]
    # A delta replaces rows by rank and cannot remove one: rank 2 would show bob twice.
    assert delta["reset"] == ["all", "daily", "weekly"]
    assert delta["boards"] == {p: [row(1, "bob", 30)] for p in ("all", "daily", "weekly")}
    assert watched(rig, ROOM, before)["boards"] == {p: [row(1, "bob", 30)] for p in ("all", "daily", "weekly")}
    await rig.queue.push(at("bob", 1, 30, t + 1, region="na", moves=1))
    delta = {d["room"]: d for d in await flusher.flush_once()}[ROOM]
    assert delta["boards"] == {"all": [], "daily": [], "weekly": []}
    assert (await rig.feed.snapshot(ROOM))["boards"] == {"all": [], "daily": [], "weekly": []}


async def test_a_standing_from_before_a_move_never_puts_the_player_back(rig):
    flusher = rig.flusher("me")
    assert await FlushLease(rig.redis, "me", 60_000).acquire()
    t = rig.clock()
    await rig.queue.push(at("ann", 1, 10, t))
    await rig.queue.push(at("bob", 1, 5, t + 1))
    await flusher.flush_once()
    await rig.queue.push(at("ann", 1, 10, t, region="na", guild=None, moves=1))
    await flusher.flush_once()
    # Late, with a higher version (an outage's backlog, say), but written before the move.
    await rig.queue.push(at("ann", 5, 50, t + 9))
    deltas = await flusher.flush_once()
    assert deltas == []  # no room's board changed
    for period in ("all", "daily", "weekly"):
        assert await board_ids(rig, "region:eu", period) == ["bob"]
        assert await board_ids(rig, "guild:owls", period) == ["bob"]
    assert (await rig.boards.page("global", "all", 0, 1, t))[0][0]["score"] == 50
    assert (await rig.boards.page("region:na", "all", 0, 1, t))[0] == [row(1, "ann", 10)]
    # In one batch behind the move as well: the move wins, whatever the versions.
    await rig.queue.push(at("bob", 1, 5, t + 1, region="na", guild=None, moves=1))
    await rig.queue.push(at("bob", 9, 90, t + 10))
    await flusher.flush_once()
    assert await board_ids(rig, "region:eu") == [] and await board_ids(rig, "guild:owls") == []
    assert await board_ids(rig, "region:na") == ["ann", "bob"]


async def test_a_move_and_credits_in_one_batch(rig):
    flusher = rig.flusher("me")
    assert await FlushLease(rig.redis, "me", 60_000).acquire()
    t = rig.clock()
    await rig.queue.push(at("ann", 1, 10, t))
    await rig.queue.push(at("bob", 1, 20, t + 1, region="na", guild=None))
    await flusher.flush_once()
    snaps = {room: await rig.feed.snapshot(room) for room in ("region:eu", "guild:owls", "region:na")}
    await rig.queue.push(at("ann", 2, 15, t + 2))  # credited before the move
    await rig.queue.push(at("ann", 2, 15, t + 2, region="na", guild=None, moves=1))  # the move
    await rig.queue.push(at("ann", 3, 25, t + 3, region="na", guild=None, moves=1))  # credited after it
    deltas = {d["room"]: d for d in await flusher.flush_once()}
    assert sorted(deltas) == ["guild:owls", "region:eu", "region:na"]
    assert deltas["region:na"]["boards"]["all"] == [row(1, "ann", 25), row(2, "bob", 20)]
    for room, snap in snaps.items():
        assert watched(rig, room, snap) == {k: v for k, v in (await rig.feed.snapshot(room)).items() if k != "room"}
    assert await board_ids(rig, "region:eu") == [] and await board_ids(rig, "guild:owls") == []
    assert await board_ids(rig, "global") == ["ann", "bob"]
    assert (await rig.boards.page("global", "all", 0, 1, t))[0] == [row(1, "ann", 25)]


def midnight(days_ahead: int) -> int:
    """A UTC midnight that is a Monday, at least `days_ahead` days from now: boards stamped then
    expire in the future, so the real Redis keeps them while the test turns its clock."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    monday = today + timedelta(days=7 - today.weekday() + days_ahead // 7 * 7 + 7)
    return int(monday.timestamp() * 1000)


DAY = 86_400_000


async def test_ended_boards_stay_final_when_a_player_moves(rig):
    monday = midnight(0)
    rig.clock_value["now"] = monday + DAY // 2
    flusher = rig.flusher("me")
    assert await FlushLease(rig.redis, "me", 60_000).acquire()
    await rig.queue.push(at("ann", 1, 10, monday + DAY // 2))
    await flusher.flush_once()
    # Tuesday: ann moves without having played today (no daily points, her last credit Monday).
    tuesday = monday + DAY + DAY // 2
    rig.clock_value["now"] = tuesday
    await rig.queue.push(at("ann", 1, 10, monday + DAY // 2, region="na", moves=1, daily=0))
    await flusher.flush_once()
    assert await board_ids(rig, "region:eu", "daily", now=monday) == ["ann"]  # Monday's board: final
    assert await board_ids(rig, "region:na", "daily", now=monday) == []
    assert await board_ids(rig, "region:eu", "weekly") == [] and await board_ids(rig, "region:na", "weekly") == ["ann"]
    assert await board_ids(rig, "region:eu") == [] and await board_ids(rig, "region:na") == ["ann"]


async def test_rollover_resets_active_rooms_and_lets_idle_ones_expire(rig):
    from app.leaderboard.flusher import ROOM_KEEP_MS, ROOMS_KEY

    monday = midnight(0)
    flusher = rig.flusher("me")
    assert await FlushLease(rig.redis, "me", 60_000).acquire()
    rig.clock_value["now"] = monday + DAY // 2
    await rig.queue.push(at("old", 1, 10, monday + DAY // 2, region="sa", guild=None))
    await flusher.flush_once()
    resets: dict[int, list] = {}
    last_touch = 0
    for day in range(1, 10):  # the first flush of each of the next nine days
        rig.clock_value["now"] = monday + day * DAY + 1000
        before = len(rig.notifier.sent)
        await flusher.flush_once()
        for room, _, delta in rig.notifier.sent[before:]:
            if room == "region:sa":
                resets[day] = delta["reset"]
        if await rig.redis.zscore(ROOMS_KEY, "region:sa") is not None:
            last_touch = rig.clock()
    # Touched by rollovers while a board of its could still be showing: its daily reset the
    # next day, its weekly one the next Monday; then left alone.
    assert resets == {1: ["daily"], 7: ["weekly"]}
    assert await rig.redis.zrange(ROOMS_KEY, 0, -1) == []  # dropped after the window
    assert last_touch == monday + 8 * DAY + 1000
    for key in (keys.seq("region:sa"), keys.published("region:sa", "all"), keys.PUBPK_PREFIX + "{region:sa}"):
        assert await rig.redis.pexpiretime(key) == last_touch + ROOM_KEEP_MS, key
    # An active room still gets its reset, and the idle one still no delta.
    await rig.queue.push(at("new", 1, 5, rig.clock() + 1))
    await flusher.flush_once()
    rig.clock_value["now"] = monday + 10 * DAY + 1000
    deltas = {d["room"]: d for d in await flusher.flush_once()}
    assert sorted(deltas) == ["guild:owls", "region:eu"]
    assert deltas[ROOM]["reset"] == ["daily"] and deltas[ROOM]["boards"] == {"daily": []}
    assert await rig.redis.zrange(ROOMS_KEY, 0, -1) == [b"guild:owls", b"region:eu"]
    # Once the idle room's keys are gone (as they expire), its seq still only goes up.
    seq = int(await rig.redis.get(keys.seq("region:sa")))
    await rig.redis.delete(keys.seq("region:sa"), keys.published("region:sa", "all"), keys.PUBPK_PREFIX + "{region:sa}")
    await rig.queue.push(at("old", 2, 20, rig.clock() + 1, region="sa", guild=None))
    delta = {d["room"]: d for d in await flusher.flush_once()}["region:sa"]
    assert delta["seq"] > seq and delta["boards"]["all"] == [row(1, "old", 20)]


async def test_a_room_set_left_by_an_earlier_release_is_taken_over(rig):
    from app.leaderboard.flusher import ROOMS_KEY

    await rig.redis.sadd("lb:rooms", "region:eu", "guild:gone")  # a plain set of every room ever seen
    await rig.redis.set("lb:rolled:daily", "d:1999-01-01")
    flusher = rig.flusher("me")
    assert await FlushLease(rig.redis, "me", 60_000).acquire()
    await rig.queue.push(at("ann", 1, 10, rig.clock()))
    deltas = await flusher.flush_once()  # no WRONGTYPE; the old set's rooms got the rollover
    assert sorted(d["room"] for d in deltas) == ["guild:owls", "region:eu"]
    assert not await rig.redis.exists("lb:rooms")
    assert sorted(await rig.redis.zrange(ROOMS_KEY, 0, -1)) == [b"guild:gone", b"guild:owls", b"region:eu"]
