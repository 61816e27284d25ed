"""Admission of action:start: the sliding-window rate limit, shared by every instance, and,
in the same round trip to Redis (admission.lua), the suspension check and the difficulty bonus.

While Redis does not answer, the same rule is counted in this instance's memory, so
players can still start challenges during an outage (each instance then allows up to
the limit on its own); the suspension check fails open (the totals update refuses a
suspended player's credit anyway), and the bonus is the one cached, else none.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import NamedTuple

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.anticheat.behaviour import DifficultyBonus
from app.breaker import Breaker
from app.leaderboard.keys import BONUS_KEY, SUSPENDED_KEY, rate_limit
from app.lua import register
from app.pipelined import PipelinedScript

log = logging.getLogger(__name__)

LOCAL_KEYS_MAX = 100_000


class LocalWindows:
    """The sliding window of admission.lua, in memory."""

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


class Admission(NamedTuple):
    suspended: bool
    wait_ms: int  # 0: allowed (and counted); else the ms until one more is allowed
    bonus: int  # extra proof-of-work bits, 0..MAX_BONUS_BITS


class RateLimiter:
    """`hit` returns 0 when allowed, else the milliseconds until one more is allowed; `admit`
    answers that, whether the player is suspended and its bonus, in one round trip. `bonus`:
    the cache of difficulty bonuses (None: no bonus, behaviour scoring is off)."""

    def __init__(self, redis: Redis, breaker: Breaker | None = None, bonus: DifficultyBonus | None = None) -> None:
        self._redis = redis
        self._breaker = breaker or Breaker()
        # Pipelined: the starts of many players in one event-loop step cost one round trip.
        self._script = PipelinedScript(redis, register(redis, __file__, "admission.lua"))
        self._local = LocalWindows()
        self._bonus = bonus

    async def hit(self, key: str, limit: int, window_ms: int, now_ms: int, member: str) -> int:
        if self._breaker.ready():
            try:
                _, wait, _ = await self._script([rate_limit(key)], [now_ms, window_ms, limit, member])
                return int(wait)
            except (RedisError, OSError):
                self._breaker.trip()
                log.warning("rate limits counted locally: Redis unavailable")
        return self._local.hit(key, limit, window_ms, now_ms)

    async def admit(self, player_id: str, key: str, limit: int, window_ms: int, now_ms: int,
                    member: str) -> Admission:
        """A suspended player is refused before its hit is counted; a player rate limited gets
        no bonus read. The bonus is read only when its cache has none fresh."""
        bonus = self._bonus.cached(player_id) if self._bonus is not None else 0  # None: to be read
        if self._breaker.ready():
            # One hash slot for the three (keys.ADMISSION_TAG): a Redis Cluster runs it on one node.
            keys = [rate_limit(key), SUSPENDED_KEY] + ([BONUS_KEY] if bonus is None else [])
            try:
                suspended, wait, raw = await self._script(keys, [now_ms, window_ms, limit, member, player_id])
            except (RedisError, OSError):
                self._breaker.trip()
                log.warning("suspension check skipped, rate limits counted locally: Redis unavailable",
                            extra={"player_id": player_id})
            else:
                if suspended:
                    return Admission(True, 0, 0)
                if bonus is None and not wait and self._bonus is not None:
                    bonus = self._bonus.remember(player_id, raw)
                return Admission(False, int(wait), bonus or 0)
        return Admission(False, self._local.hit(key, limit, window_ms, now_ms), bonus or 0)
