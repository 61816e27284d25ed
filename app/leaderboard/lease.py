"""The flush lease: one instance at a time drains the queue.

A key with a short expiry names the holder; the holder renews it every interval, and
when it dies the key expires and another instance takes it. Every flush is fenced by
the same key (app/leaderboard/flusher.py), so a holder that stalled past its lease
cannot apply anything.
"""

from __future__ import annotations

from redis.asyncio import Redis

from app.leaderboard.keys import LEASE_KEY
from app.lua import register


class FlushLease:
    def __init__(self, redis: Redis, holder: str, ttl_ms: int) -> None:
        self._redis = redis
        self.holder = holder
        self._ttl_ms = ttl_ms
        self._renew = register(redis, __file__, "lease_renew.lua")
        self._release = register(redis, __file__, "lease_release.lua")

    async def renew(self) -> bool:
        return bool(await self._renew(keys=[LEASE_KEY], args=[self.holder, self._ttl_ms]))

    async def acquire(self) -> bool:
        return bool(await self._redis.set(LEASE_KEY, self.holder, nx=True, px=self._ttl_ms))

    async def release(self) -> None:
        await self._release(keys=[LEASE_KEY], args=[self.holder])

    async def current_holder(self) -> str | None:
        value = await self._redis.get(LEASE_KEY)
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)
