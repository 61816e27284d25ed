"""The delta queue against a real Redis: the stream stays near its cap, a trim of standings not
yet flushed is recorded and answered with a rebuild from MongoDB, and a pending entry trimmed
under a reader never holds the queue up."""

from __future__ import annotations

from app.anticheat.suspensions import Suspensions
from app.clock import now_ms
from app.leaderboard.boards import BoardStore, Standing
from app.leaderboard.flusher import BUILT_KEY, Flusher, FlushLoop
from app.leaderboard.lease import FlushLease
from app.leaderboard.periods import day_key, week_key
from app.leaderboard.queue import STREAM, DeltaQueue
from app.leaderboard.rebuild import rebuild_boards
from tests.support import make_standing

CAP = 50  # Redis trims whole stream nodes (100 entries by default), so the stream reaches ~150


class Recorder:
    async def to_room(self, room: str, event: str, payload: dict) -> None:
        pass


def standing(pid: str, version: int, total: int, at: int) -> Standing:
    return make_standing(pid, pid, "eu", None, version, total, total, total, at)


async def test_the_stream_is_capped_and_a_trim_is_recorded(redis):
    queue = DeltaQueue(redis, max_len=CAP)
    await queue.ensure_group()
    t = now_ms()
    await queue.push_many([standing("a", 1, 1, t)] * (CAP - 1))
    assert not await queue.lost()  # under the cap: nothing dropped, nothing to rebuild
    for i in range(300):
        await queue.push(standing("a", i + 1, i + 1, t))
    assert await queue.lost()
    assert CAP <= await redis.xlen(STREAM) <= CAP + 100
    await queue.clear_lost()
    await queue.push_many([standing("b", 1, 1, t)] * 300)
    assert await queue.lost() and await redis.xlen(STREAM) <= CAP + 100


async def test_standings_the_cap_trimmed_come_back_from_mongodb(redis, repo):
    t = now_ms()
    docs = [{"_id": f"p{i}", "name": f"P{i}", "region": "eu", "guild": None, "actions": 1, "total": 10 * (i + 1),
             "days": {day_key(t): 10 * (i + 1)}, "weeks": {week_key(t): 10 * (i + 1)}, "last_ms": t + i}
            for i in range(10)]
    await repo.players.insert_many(docs)
    boards = BoardStore(redis)
    queue = DeltaQueue(redis, max_len=CAP)
    await queue.ensure_group()
    await redis.set(BUILT_KEY, 1)  # a read model that was built, then nobody flushed for a while
    for doc in docs:
        await queue.push(Standing.from_player(doc, t))
    for _ in range(300):  # the queue grows past its cap: the oldest entries go
        await queue.push(Standing.from_player(docs[0], t))
    lease = FlushLease(redis, "me", 60_000)
    flusher = Flusher(redis, queue, boards, lease, Recorder(), 10)
    loop = FlushLoop(flusher, lease, queue, lambda: rebuild_boards(repo, boards, queue, Suspensions(redis)), redis, 100)
    for _ in range(4):  # takes the lease, then flushes (rebuilding first) until the queue is empty
        await loop.tick()
    assert loop.holding and await redis.xlen(STREAM) == 0 and not await queue.lost()
    rows, total = await boards.page("global", "all", 0, 20, t)
    assert total == 10 and {r["player_id"]: r["score"] for r in rows} == {d["_id"]: d["total"] for d in docs}


async def test_a_pending_entry_trimmed_under_its_reader_is_acknowledged_not_stuck(redis):
    t = now_ms()
    boards = BoardStore(redis)
    queue = DeltaQueue(redis, max_len=CAP)
    await queue.ensure_group()
    await queue.push(standing("ann", 1, 10, t))
    assert len(await queue.read(10)) == 1  # read by a holder that died before its flush
    await queue.push_many([standing("bob", 1, 5, t)] * 300)  # trims ann's entry, still pending
    lease = FlushLease(redis, "me", 60_000)
    assert await lease.acquire()
    flusher = Flusher(redis, queue, boards, lease, Recorder(), 10)
    await flusher.flush_once()
    await flusher.flush_once()
    assert (await redis.xpending(STREAM, "flushers"))["pending"] == 0
    assert await boards.rank("global", "all", "bob", t) == 1
    assert await queue.lost()  # ann's standing went unapplied: the next holder tick rebuilds
