"""The delta queue: a Redis Stream every instance appends to and one flusher drains.

An entry is a player's absolute standing, not an increment, so applying one twice or
late changes nothing. When Redis refuses an append, the standing waits in a bounded
local backlog and is appended when Redis answers again; MongoDB already holds it.
"""

from __future__ import annotations

import logging
from collections import deque

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from app.breaker import Breaker
from app.leaderboard.boards import Standing

log = logging.getLogger(__name__)

STREAM = "lb:queue"
GROUP = "flushers"
CONSUMER = "flusher"  # one name for every holder of the lease: a new holder reads what the last left pending
BACKLOG_MAX = 100_000


class DeltaQueue:
    def __init__(self, redis: Redis, breaker: Breaker | None = None) -> None:
        self._redis = redis
        self._breaker = breaker or Breaker()
        self._backlog: deque[Standing] = deque()
        self.overflowed = False

    @property
    def backlog(self) -> int:
        return len(self._backlog)

    async def ensure_group(self) -> None:
        try:
            await self._redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def push(self, standing: Standing) -> bool:
        """Append, or keep for later; True when it reached Redis now."""
        if not self._breaker.ready():
            self._keep(standing)
            return False
        try:
            await self._redis.xadd(STREAM, standing.to_fields())
            return True
        except (RedisError, OSError):
            self._breaker.trip()
            self._keep(standing)
            log.warning("delta queue unavailable; kept locally", extra={"player_id": standing.player_id})
            return False

    def _keep(self, standing: Standing) -> None:
        if len(self._backlog) >= BACKLOG_MAX:
            self._backlog.popleft()
            self.overflowed = True
        self._backlog.append(standing)

    async def push_many(self, standings: list[Standing]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for standing in standings:
                pipe.xadd(STREAM, standing.to_fields())
            await pipe.execute()

    async def retry_backlog(self) -> int:
        """Append what an outage held back; raises while Redis is still away."""
        sent = 0
        while self._backlog:
            batch = list(self._backlog)[:1000]
            await self.push_many(batch)
            for _ in batch:
                self._backlog.popleft()
            sent += len(batch)
        return sent

    async def depth(self) -> int:
        return int(await self._redis.xlen(STREAM))

    async def read(self, count: int) -> list[tuple[bytes, Standing]]:
        """Entries a dead holder left pending first, then new ones."""
        for start in ("0", ">"):
            reply = await self._redis.xreadgroup(GROUP, CONSUMER, {STREAM: start}, count=count)
            entries = reply[0][1] if reply else []
            if entries:
                return [(entry_id, Standing.from_fields(fields)) for entry_id, fields in entries if fields]
        return []
