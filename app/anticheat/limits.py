"""Sliding-window rate limits in Redis, shared by every instance."""

from __future__ import annotations

from redis.asyncio import Redis

# KEYS[1] window zset; ARGV: now_ms, window_ms, limit, member
_SLIDING_WINDOW = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local used = redis.call('ZCARD', key)
if used < limit then
  redis.call('ZADD', key, now, ARGV[4])
  redis.call('PEXPIRE', key, window)
  return 0
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
local wait = tonumber(oldest[2]) + window - now
if wait < 1 then wait = 1 end
return wait
"""


class RateLimiter:
    """`hit` returns 0 when allowed, else the milliseconds until one more is allowed."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._script = redis.register_script(_SLIDING_WINDOW)

    async def hit(self, key: str, limit: int, window_ms: int, now_ms: int, member: str) -> int:
        return int(await self._script(keys=[f"rl:{key}"], args=[now_ms, window_ms, limit, member]))
