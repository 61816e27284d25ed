"""Rebuilding the read model from MongoDB puts players where their documents say, moves included:
into an empty Redis, or over boards that still hold a player's old region and guild."""

from __future__ import annotations

from app.anticheat.suspensions import Suspensions
from app.clock import now_ms
from app.leaderboard.boards import BoardStore, Standing
from app.leaderboard.flusher import Flusher
from app.leaderboard.lease import FlushLease
from app.leaderboard.periods import STANDARD, day_key, week_key
from app.leaderboard.queue import DeltaQueue
from app.leaderboard.rebuild import rebuild_boards

PERIODS = STANDARD.names


class Recorder:
    def __init__(self) -> None:
        self.rooms: list[str] = []

    async def to_room(self, room: str, event: str, payload: dict) -> None:
        self.rooms.append(room)


def doc(pid: str, points: int, t: int, region: str, guild: str | None, moves: int) -> dict:
    return {"_id": pid, "name": pid, "region": region, "guild": guild, "moves": moves, "actions": 1,
            "total": points, "days": {day_key(t): points}, "weeks": {week_key(t): points}, "last_ms": t}


async def boards_seen(boards: BoardStore, t: int) -> dict[tuple[str, str], list[str]]:
    out = {}
    for board in ("global", "region:eu", "region:na", "guild:owls", "guild:hawks"):
        for period in PERIODS:
            rows, _ = await boards.page(board, period, 0, 10, t)
            out[board, period] = [r["player_id"] for r in rows]
    return out


async def test_a_rebuild_after_a_move_places_the_player_where_mongodb_says(redis, repo):
    t = now_ms()
    boards, queue, notifier = BoardStore(redis), DeltaQueue(redis), Recorder()
    await queue.ensure_group()
    lease = FlushLease(redis, "me", 60_000)
    assert await lease.acquire()
    flusher = Flusher(redis, queue, boards, lease, notifier, 10)
    # Redis saw ann in eu and owls; she moved to na and hawks, and that standing never
    # reached Redis (a dropped backlog, a trimmed queue): MongoDB has the move.
    await queue.push(Standing.from_player(doc("ann", 30, t, "eu", "owls", 0), t))
    await queue.push(Standing.from_player(doc("bob", 20, t + 1, "eu", "owls", 0), t))
    await flusher.flush_once()
    await repo.players.insert_many([doc("ann", 30, t, "na", "hawks", 1), doc("bob", 20, t + 1, "eu", "owls", 0)])

    assert await rebuild_boards(repo, boards, queue, Suspensions(redis)) == 2
    notifier.rooms.clear()
    await flusher.flush_once()
    expected = {}
    for period in PERIODS:
        expected.update({("global", period): ["ann", "bob"], ("region:eu", period): ["bob"],
                         ("region:na", period): ["ann"], ("guild:owls", period): ["bob"],
                         ("guild:hawks", period): ["ann"]})
    assert await boards_seen(boards, t) == expected
    assert sorted(notifier.rooms) == ["guild:hawks", "guild:owls", "region:eu", "region:na"]

    # A standing from before the move, late, changes nothing there.
    await queue.push(Standing.from_player(doc("ann", 30, t, "eu", "owls", 0), t))
    await flusher.flush_once()
    assert await boards_seen(boards, t) == expected

    # And a rebuild into an empty Redis gives the same boards.
    await redis.flushall()
    await queue.ensure_group()
    assert await lease.acquire()
    await rebuild_boards(repo, boards, queue, Suspensions(redis))
    await flusher.flush_once()
    assert await boards_seen(boards, t) == expected
