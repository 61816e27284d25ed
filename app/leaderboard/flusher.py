"""Once per LEADERBOARD_FLUSH_MS, the lease holder turns the queue into one delta per changed room.

One Lua script does a whole flush atomically, fenced by the lease: apply the batch to
every board, acknowledge and delete its entries, diff each touched room's top TOP_N
against what was last published, bump the room's `seq`, and store the new published
rows. Either all of that happens or none of it, so a flush redone by another instance
after a crash applies each standing exactly once in effect (standings are absolute and
versioned anyway). Only the emit can be lost with a dying instance; `seq` then shows a
gap and the watcher asks for a fresh snapshot, as PROTOCOL.md section 6 says.

Published rows also serve `watch` snapshots, so a snapshot at `seq` N is exactly the
board that deltas up to N describe.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from app.clock import iso, now_ms
from app.leaderboard.boards import APPLY_LUA, STANDING_FIELDS, BoardStore, Standing, expire_at, period_key, standing_args
from app.leaderboard.lease import LEASE_KEY, FlushLease
from app.leaderboard.queue import GROUP, STREAM, DeltaQueue
from app.notify import Notifier

log = logging.getLogger(__name__)

BUILT_KEY = "lb:built"
BATCH_MAX = 20_000

_FLUSH = APPLY_LUA + """
if redis.call('GET', '""" + LEASE_KEY + """') ~= ARGV[1] then return {-1} end
local now, topn = tonumber(ARGV[2]), tonumber(ARGV[3])
local cur = {all = 'all', daily = ARGV[4], weekly = ARGV[5]}
local pub_expire = {daily = tonumber(ARGV[6]), weekly = tonumber(ARGV[7])}
local n = tonumber(ARGV[8])
local rooms, order = {}, {}
local function touch(room)
  if not rooms[room] then rooms[room] = true; order[#order + 1] = room end
end
for i = 0, n - 1 do
  redis.call('XACK', '""" + STREAM + """', '""" + GROUP + """', ARGV[9 + i])
  redis.call('XDEL', '""" + STREAM + """', ARGV[9 + i])
end
local base = 9 + n
local width = """ + str(STANDING_FIELDS) + """
for i = 0, (#ARGV - base + 1) / width - 1 do
  local a = {}
  for j = 0, width - 1 do a[j + 1] = ARGV[base + i * width + j] end
  apply_standing(a)
  touch('region:' .. a[2])
  if a[3] ~= '' then touch('guild:' .. a[3]) end
end
for _, period in ipairs({'daily', 'weekly'}) do
  local mark = redis.call('GET', 'lb:rolled:' .. period)
  if mark ~= cur[period] then
    if mark then
      for _, room in ipairs(redis.call('SMEMBERS', 'lb:rooms')) do touch(room) end
    end
    redis.call('SET', 'lb:rolled:' .. period, cur[period])
  end
end
local out = {}
for _, room in ipairs(order) do
  redis.call('SADD', 'lb:rooms', room)
  local changes = {}
  for _, period in ipairs({'all', 'daily', 'weekly'}) do
    local pk = cur[period]
    local pubkey = 'lb:pub:' .. room .. ':' .. pk
    local reset = 0
    local was = redis.call('HGET', 'lb:pubpk:' .. room, period)
    if period ~= 'all' and was and was ~= pk then
      if redis.call('EXISTS', 'lb:pub:' .. room .. ':' .. was) == 1 then reset = 1 end
      redis.call('DEL', 'lb:pub:' .. room .. ':' .. was)
    end
    redis.call('HSET', 'lb:pubpk:' .. room, period, pk)
    local top = redis.call('ZRANGE', 'lb:' .. room .. ':' .. pk, 0, topn - 1, 'WITHSCORES')
    local slots = {}
    for r = 1, #top / 2 do
      local member, score = top[2 * r - 1], top[2 * r]
      local value = member .. ' ' .. score
      if reset == 1 or redis.call('HGET', pubkey, r) ~= value then
        redis.call('HSET', pubkey, r, value)
        slots[#slots + 1] = r; slots[#slots + 1] = member; slots[#slots + 1] = score
      end
    end
    if pub_expire[period] and redis.call('EXISTS', pubkey) == 1 then
      redis.call('PEXPIREAT', pubkey, pub_expire[period])
    end
    if #slots > 0 or reset == 1 then
      changes[#changes + 1] = period; changes[#changes + 1] = reset; changes[#changes + 1] = #slots / 3
      for _, v in ipairs(slots) do changes[#changes + 1] = v end
    end
  end
  if #changes > 0 then
    local seqkey = 'seq:' .. room
    redis.call('SET', seqkey, now, 'NX')
    local seq = redis.call('INCR', seqkey)
    out[#out + 1] = room; out[#out + 1] = seq; out[#out + 1] = #changes
    for _, v in ipairs(changes) do out[#out + 1] = v end
  end
end
return out
"""


class LeaseLost(Exception):
    """The flush was fenced off: another instance holds the lease now."""


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Flusher:
    def __init__(
        self,
        redis: Redis,
        queue: DeltaQueue,
        boards: BoardStore,
        lease: FlushLease,
        notifier: Notifier,
        top_n: int,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self._clock = clock
        self._redis = redis
        self._queue = queue
        self._boards = boards
        self._lease = lease
        self._notifier = notifier
        self._top_n = top_n
        self._script = redis.register_script(_FLUSH)

    async def flush_once(self) -> list[dict]:
        """One flush: apply what is queued, emit one delta per changed room; returns the deltas."""
        try:
            entries = await self._queue.read(BATCH_MAX)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self._queue.ensure_group()
            entries = await self._queue.read(BATCH_MAX)
        latest: dict[str, Standing] = {}
        for _, standing in entries:
            seen = latest.get(standing.player_id)
            if seen is None or standing.version > seen.version:
                latest[standing.player_id] = standing
        if latest:
            async with self._redis.pipeline(transaction=False) as pipe:
                for s in latest.values():
                    pipe.hset("names", s.player_id, s.name)
                await pipe.execute()
        now = self._clock()
        args: list[object] = [
            self._lease.holder, now, self._top_n, period_key("daily", now), period_key("weekly", now),
            expire_at("daily", now), expire_at("weekly", now), len(entries),
        ]
        args += [entry_id for entry_id, _ in entries]
        for s in latest.values():
            args += standing_args(s)
        raw = await self._script(args=args)
        if raw and raw[0] == -1:
            raise LeaseLost()
        deltas = await self._deltas(raw, iso(self._clock()))
        for delta in deltas:
            await self._notifier.to_room(delta["room"], "leaderboard:delta", delta)
        return deltas

    async def _deltas(self, raw: list, at: str) -> list[dict]:
        deltas: list[dict] = []
        i = 0
        while i < len(raw):
            room, seq, width = _text(raw[i]), int(raw[i + 1]), int(raw[i + 2])
            end = i + 3 + width
            i += 3
            delta: dict = {"room": room, "seq": seq, "at": at, "boards": {}}
            resets = []
            while i < end:
                period, reset, count = _text(raw[i]), int(raw[i + 1]), int(raw[i + 2])
                i += 3
                slots = [(int(raw[i + 3 * k]), raw[i + 3 * k + 1], float(raw[i + 3 * k + 2])) for k in range(count)]
                i += 3 * count
                rows = await self._boards.rows([(m, s) for _, m, s in slots], 0)
                delta["boards"][period] = [{**row, "rank": rank} for row, (rank, _, _) in zip(rows, slots)]
                if reset:
                    resets.append(period)
            if resets:
                delta["reset"] = resets
            deltas.append(delta)
        return deltas


class FlushLoop:
    """Runs on every instance: keeps the queue fed after outages, and flushes while holding the lease."""

    def __init__(
        self,
        flusher: Flusher,
        lease: FlushLease,
        queue: DeltaQueue,
        rebuild: Callable[[], Awaitable[int]],
        redis: Redis,
        interval_ms: int,
        on_flush: Callable[[float, int], None] | None = None,
    ) -> None:
        self._flusher = flusher
        self._lease = lease
        self._queue = queue
        self._rebuild = rebuild
        self._redis = redis
        self._interval = interval_ms / 1000
        self._on_flush = on_flush
        self.holding = False
        self.queue_depth = 0

    async def run(self) -> None:
        me = asyncio.current_task()
        # A cancel that lands inside a driver call can be absorbed there; stop all the same.
        while me is None or not me.cancelling():
            await asyncio.sleep(self._interval)
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                self.holding = False
                log.warning("flush tick skipped: %s", exc)
            except Exception:  # noqa: BLE001 - one bad tick never kills the loop
                log.exception("flush tick failed")

    async def tick(self) -> None:
        if self._queue.overflowed:
            await self._redis.delete(BUILT_KEY)
            self._queue.overflowed = False
        await self._queue.retry_backlog()
        self.queue_depth = await self._queue.depth()
        if self.holding:
            self.holding = await self._lease.renew()
            if not self.holding:
                log.warning("flush lease lost")
                return
        else:
            self.holding = await self._lease.acquire()
            if self.holding:
                # Wait one interval: the last holder may have flushed just before it let go.
                log.info("flush lease taken", extra={"instance": self._lease.holder})
            return
        if not await self._redis.exists(BUILT_KEY):
            count = await self._rebuild()
            await self._redis.set(BUILT_KEY, now_ms())
            log.info("read model rebuilt from MongoDB: %d players queued", count)
        await self._flush()

    async def _flush(self) -> None:
        started = time.perf_counter()
        try:
            deltas = await self._flusher.flush_once()
        except LeaseLost:
            self.holding = False
            log.warning("flush fenced off: the lease moved")
            return
        if self._on_flush:
            self._on_flush(time.perf_counter() - started, len(deltas))

    async def stop(self) -> None:
        """On shutdown: hand Redis what an outage held back, flush once more while still
        holding the lease, then give the lease up so another instance takes over at once."""
        try:
            await self._queue.retry_backlog()
        except (RedisError, OSError):
            log.error("stopping with %d standings Redis never took; MongoDB has them: "
                      "run rebuild-leaderboards once Redis is back", self._queue.backlog)
        if not self.holding:
            return
        try:
            if await self._lease.renew():
                await self._flush()
            await self._lease.release()
            log.info("flush lease given up", extra={"instance": self._lease.holder})
        except (RedisError, OSError) as exc:
            log.warning("last flush skipped: %s", exc)
        self.holding = False
