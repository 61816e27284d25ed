"""The delta queue: a Redis Stream every instance appends to and one flusher drains.

An entry is a player's absolute standing, not an increment, so applying one twice or
late changes nothing. When Redis refuses an append, the standing waits in a bounded
local backlog and is appended when Redis answers again; MongoDB already holds it.

The stream is capped (STREAM_MAX_LEN), so that a queue nobody drains (no flusher for a long
while) cannot fill Redis. Once it reaches the cap, an append trims the oldest entries, which
the flusher may not have read yet. That loss, like a backlog overflow, is recorded in Redis
(LOST_KEY) by the very append that caused it, and the flush loop's lease holder answers it
with a rebuild from MongoDB (app/leaderboard/flusher.py), so nothing is lost for good.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from app.breaker import Breaker
from app.leaderboard.boards import Standing
from app.leaderboard.keys import GROUP, LOST_KEY, STREAM
from app.lua import register
from app.pipelined import PipelinedScript

log = logging.getLogger(__name__)

CONSUMER = "flusher"  # one name for every holder of the lease: a new holder reads what the last left pending
BACKLOG_MAX = 100_000
# About this many entries at most (XADD MAXLEN ~: Redis trims whole nodes, so a little more).
# Normally the queue holds one flush interval's standings; a million is minutes of heavy
# traffic with nobody flushing. It must stay above the number of players: a rebuild queues
# one standing per player at once, and a rebuild that trims itself would be redone forever.
STREAM_MAX_LEN = 1_000_000


class DeltaQueue:
    def __init__(self, redis: Redis, breaker: Breaker | None = None, max_len: int = STREAM_MAX_LEN) -> None:
        self._redis = redis
        self._breaker = breaker or Breaker()
        self.max_len = max_len
        self._append = register(redis, __file__, "append.lua")
        # One standing a completion: those of the completions of one event-loop step share a round trip.
        self._append_one = PipelinedScript(redis, self._append)
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
        return await self._push(standing) is not None

    async def push_and_rank(self, standing: Standing, board_key: str) -> int | None:
        """push(), and in the same round trip the rank the standing's total takes on `board_key`
        (behind everyone with as many points or more); None when the standing was kept for later."""
        reply = await self._push(standing, board_key)
        return None if reply is None else int(reply[1])

    async def _push(self, standing: Standing, rank_on: str | None = None) -> Any:
        """The script's reply; None when the standing was kept for later."""
        if not self._breaker.ready():
            self._keep(standing)
            return None
        try:
            return await self._append_all([standing], rank_on)
        except (RedisError, OSError):
            self._breaker.trip()
            self._keep(standing)
            log.warning("delta queue unavailable; kept locally", extra={"player_id": standing.player_id})
            return None

    def _keep(self, standing: Standing) -> None:
        if len(self._backlog) >= BACKLOG_MAX:
            self._backlog.popleft()
            self.overflowed = True
        self._backlog.append(standing)

    async def push_many(self, standings: list[Standing]) -> None:
        if standings:
            await self._append_all(standings)

    async def _append_all(self, standings: list[Standing], rank_on: str | None = None) -> Any:
        """append.lua's reply; with `rank_on`, the first standing's rank there too."""
        args: list[str | int] = [self.max_len, ""]
        for standing in standings:
            pairs = [item for pair in standing.to_fields().items() for item in pair]
            args += [len(pairs), *pairs]
        if len(standings) > 1:
            return await self._append(keys=[STREAM, LOST_KEY], args=args)
        if rank_on is None:
            return await self._append_one([STREAM, LOST_KEY], args)
        # The board is in another hash slot than the stream (app/leaderboard/keys.py): its read
        # goes right after the append, in the same pipeline. The rank: one more than the players
        # with as many points or more.
        appended, ahead = await self._append_one([STREAM, LOST_KEY], args,
                                                 then=("ZCOUNT", rank_on, "-inf", -standings[0].total))
        return [appended, int(ahead) + 1]

    async def mark_lost(self) -> None:
        """Standings were dropped before reaching the flusher: have the read model rebuilt."""
        await self._redis.set(LOST_KEY, 1)

    async def lost(self) -> bool:
        return bool(await self._redis.exists(LOST_KEY))

    async def clear_lost(self) -> None:
        await self._redis.delete(LOST_KEY)

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

    async def read(self, count: int) -> list[tuple[bytes, Standing | None]]:
        """Entries a dead holder left pending first, then new ones. A pending entry the cap
        trimmed since it was read comes without its standing (None): it is still to be
        acknowledged, or it would be read first forever and hold the queue up."""
        for start in ("0", ">"):
            # RESP2's [[stream, [(id, fields), ...]]]; redis-py types the RESP3 map shape as well.
            reply: Any = await self._redis.xreadgroup(GROUP, CONSUMER, {STREAM: start}, count=count)
            entries = reply[0][1] if reply else []
            if entries:
                return [(entry_id, Standing.from_fields(fields) if fields else None) for entry_id, fields in entries]
        return []
