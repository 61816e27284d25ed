"""Sliding-window rate limits in Redis, shared by every instance.

While Redis does not answer, the same rule is counted in this instance's memory, so
players can still start challenges during an outage (each instance then allows up to
the limit on its own).
"""

from __future__ import annotations

import logging
from collections import deque

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.breaker import Breaker

log = logging.getLogger(__name__)

LOCAL_KEYS_MAX = 100_000

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


class LocalWindows:
    """The sliding window of _SLIDING_WINDOW, in memory."""

    def __init__(self, max_keys: int = LOCAL_KEYS_MAX) -> None:
        self._windows: dict[str, deque[int]] = {}
        self._max_keys = max_keys

    def hit(self, key: str, limit: int, window_ms: int, now_ms: int) -> int:
        hits = self._windows.get(key)
        if hits is None:
            if len(self._windows) >= self._max_keys:
                self._prune(now_ms, window_ms)
            hits = self._windows[key] = deque()
        while hits and hits[0] <= now_ms - window_ms:
            hits.popleft()
        if len(hits) < limit:
            hits.append(now_ms)
            return 0
        return max(1, hits[0] + window_ms - now_ms)

    def _prune(self, now_ms: int, window_ms: int) -> None:
        for key in [k for k, hits in self._windows.items() if not hits or hits[-1] <= now_ms - window_ms]:
            del self._windows[key]


class RateLimiter:
    """`hit` returns 0 when allowed, else the milliseconds until one more is allowed."""

    def __init__(self, redis: Redis, breaker: Breaker | None = None) -> None:
        self._redis = redis
        self._breaker = breaker or Breaker()
        self._script = redis.register_script(_SLIDING_WINDOW)
        self._local = LocalWindows()

    async def hit(self, key: str, limit: int, window_ms: int, now_ms: int, member: str) -> int:
        if self._breaker.ready():
            try:
                return int(await self._script(keys=[f"rl:{key}"], args=[now_ms, window_ms, limit, member]))
            except (RedisError, OSError):
                self._breaker.trip()
                log.warning("rate limits counted locally: Redis unavailable")
        return self._local.hit(key, limit, window_ms, now_ms)
