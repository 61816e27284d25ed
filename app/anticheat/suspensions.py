"""Operator suspensions. MongoDB holds the decision; a Redis set answers the hot-path check,
which action:start makes in its admission round trip (app/anticheat/limits.py)."""

from __future__ import annotations

from redis.asyncio import Redis

from app.leaderboard.keys import SUSPENDED_KEY

_KEY = SUSPENDED_KEY


class Suspensions:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def mark(self, player_id: str, suspended: bool) -> None:
        if suspended:
            await self._redis.sadd(_KEY, player_id)
        else:
            await self._redis.srem(_KEY, player_id)

    async def members(self) -> set[str]:
        """Every player the Redis set holds (a rebuild drops those MongoDB no longer suspends)."""
        return {m.decode() if isinstance(m, bytes) else str(m) for m in await self._redis.smembers(_KEY)}
