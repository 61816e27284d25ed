"""Room snapshots and `leaderboard:delta` pushes, numbered by a per-room `seq` in Redis."""

from __future__ import annotations

from redis.asyncio import Redis

from app.clock import iso, now_ms
from app.leaderboard.boards import BoardStore
from app.notify import Notifier


class RoomFeed:
    def __init__(self, redis: Redis, boards: BoardStore, notifier: Notifier, top_n: int) -> None:
        self._redis = redis
        self._boards = boards
        self._notifier = notifier
        self._top_n = top_n

    async def snapshot(self, room: str) -> dict:
        at = now_ms()
        seq = await self._redis.get(f"seq:{room}")
        boards = await self._boards.top(room, at, self._top_n)
        return {"room": room, "seq": int(seq or 0), "boards": boards}

    async def push(self, room: str, at_ms: int) -> None:
        """Send the room's top rows. Every row counts as changed: correct, if not yet minimal."""
        seq = await self._redis.incr(f"seq:{room}")
        boards = await self._boards.top(room, at_ms, self._top_n)
        delta = {"room": room, "seq": int(seq), "at": iso(now_ms()), "boards": boards}
        await self._notifier.to_room(room, "leaderboard:delta", delta)
