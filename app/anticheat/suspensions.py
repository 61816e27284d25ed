"""Operator suspensions. MongoDB holds the decision; a Redis set answers the hot-path check."""

from __future__ import annotations

import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.breaker import Breaker
from app.errors import ProtocolError

log = logging.getLogger(__name__)

_KEY = "suspended"


class Suspensions:
    def __init__(self, redis: Redis, breaker: Breaker | None = None) -> None:
        self._redis = redis
        self._breaker = breaker or Breaker()

    async def mark(self, player_id: str, suspended: bool) -> None:
        if suspended:
            await self._redis.sadd(_KEY, player_id)
        else:
            await self._redis.srem(_KEY, player_id)

    async def members(self) -> set[str]:
        """Every player the Redis set holds (a rebuild drops those MongoDB no longer suspends)."""
        return {m.decode() if isinstance(m, bytes) else str(m) for m in await self._redis.smembers(_KEY)}

    async def refuse_if_suspended(self, player_id: str) -> None:
        """Raise `suspended`. Fails open: while Redis is away the player goes through, so
        challenges are still issued and completions credited in MongoDB."""
        if not self._breaker.ready():
            return
        try:
            suspended = await self._redis.sismember(_KEY, player_id)
        except (RedisError, OSError):
            self._breaker.trip()
            log.warning("suspension check skipped: Redis unavailable", extra={"player_id": player_id})
            return
        if suspended:
            raise ProtocolError("suspended", "this player is suspended by an operator")
