"""The flusher against a real Redis: deltas agree with snapshots and with boards built from
scratch, whatever the order standings arrive in; rollover; lease fencing; a redone flush."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from redis.asyncio import Redis

from app.clock import now_ms
from app.leaderboard.boards import BoardStore, Standing
from app.leaderboard.feed import RoomFeed
from app.leaderboard.flusher import Flusher, LeaseLost
from app.leaderboard.lease import FlushLease
from app.leaderboard.queue import DeltaQueue

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
                made.append(Standing(pid, pid.upper(), "eu", None, versions[pid], totals[pid], totals[pid], totals[pid], t))
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
        assert (await rig.feed.snapshot(ROOM)) == {"room": ROOM, "seq": model["seq"], "boards": model["boards"]}
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
def test_any_interleaving_of_deltas_gives_the_board_from_scratch(redis_proc, batches, permutations, stale_copies, snapshot_at):
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
    return Standing(pid, pid, "eu", "owls", version, points, points, points, at)


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
    assert "reset" not in delta and delta["boards"]["daily"] == [{"rank": 1, "player_id": "bob", "name": "bob", "score": 5}]
    # The new day's board expires two days after that day ends.
    tuesday = monday + timedelta(days=1)
    expires = await rig.redis.execute_command("PEXPIRETIME", f"lb:region:eu:d:{tuesday:%Y-%m-%d}")
    assert expires == int((tuesday + timedelta(days=3)).timestamp() * 1000)


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
    assert [d["boards"]["all"] for d in deltas if d["room"] == ROOM] == [[{"rank": 1, "player_id": "ann", "name": "ann", "score": 10}]]
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
