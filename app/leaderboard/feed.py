"""`watch` snapshots: the rows last published to a room, read atomically with its `seq`."""

from __future__ import annotations

from collections.abc import Callable

from redis.asyncio import Redis

from app.clock import now_ms
from app.leaderboard import keys
from app.leaderboard.boards import BoardStore
from app.leaderboard.flusher import ALL_ONLY_ROOMS
from app.leaderboard.periods import ALL


class RoomFeed:
    def __init__(self, redis: Redis, boards: BoardStore, clock: Callable[[], int] = now_ms) -> None:
        self._redis = redis
        self._boards = boards
        self._clock = clock

    async def snapshot(self, room: str) -> dict:
        now = self._clock()
        table = self._boards.periods
        periods = [ALL] if room.startswith(ALL_ONLY_ROOMS) else list(table.names)
        async with self._redis.pipeline(transaction=True) as pipe:
            # A room's seq starts at the clock's milliseconds, so that a Redis that comes
            # back empty never hands out a seq a watcher has already seen.
            pipe.set(keys.seq(room), now, nx=True)
            pipe.get(keys.seq(room))
            for period in periods:
                pipe.hgetall(keys.published(room, table.period_key(period, now)))
            _, seq, *published = await pipe.execute()
        boards = {}
        for period, slots in zip(periods, published, strict=True):
            ranked = sorted((int(rank), value.decode().rsplit(" ", 1)) for rank, value in slots.items())
            rows = await self._boards.rows([(m.encode(), float(s)) for _, (m, s) in ranked], 1)
            boards[period] = [{**row, "rank": rank} for row, (rank, _) in zip(rows, ranked, strict=True)]
        resets_at = {} if periods == [ALL] else table.all_resets_at(now)
        return {"room": room, "seq": int(seq), "boards": boards, "resets_at": resets_at}
