"""`watch` snapshots: the rows last published to a room, read atomically with its `seq`."""

from __future__ import annotations

from collections.abc import Callable

from redis.asyncio import Redis

from app.clock import now_ms
from app.leaderboard.boards import PERIODS, BoardStore, period_key


class RoomFeed:
    def __init__(self, redis: Redis, boards: BoardStore, clock: Callable[[], int] = now_ms) -> None:
        self._redis = redis
        self._boards = boards
        self._clock = clock

    async def snapshot(self, room: str) -> dict:
        now = self._clock()
        async with self._redis.pipeline(transaction=True) as pipe:
            # A room's seq starts at the clock's milliseconds, so that a Redis that comes
            # back empty never hands out a seq a watcher has already seen.
            pipe.set(f"seq:{room}", now, nx=True)
            pipe.get(f"seq:{room}")
            for period in PERIODS:
                pipe.hgetall(f"lb:pub:{room}:{period_key(period, now)}")
            _, seq, *published = await pipe.execute()
        boards = {}
        for period, slots in zip(PERIODS, published, strict=True):
            ranked = sorted((int(rank), value.decode().rsplit(" ", 1)) for rank, value in slots.items())
            rows = await self._boards.rows([(m.encode(), float(s)) for _, (m, s) in ranked], 1)
            boards[period] = [{**row, "rank": rank} for row, (rank, _) in zip(rows, ranked, strict=True)]
        return {"room": room, "seq": int(seq), "boards": boards}
