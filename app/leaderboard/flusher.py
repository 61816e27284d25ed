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

A flush looks at the rooms of its standings, the rooms players moved out of (their rows
below move up), and, on the first flush of a new day or week, the rooms active within
ROLLOVER_WINDOW_MS (their reset). Rooms idle longer are never looked at again, and their
own keys expire (ROOM_KEEP_MS).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from app.clock import iso, now_ms
from app.leaderboard.boards import (
    APPLY_LUA,
    STANDING_FIELDS,
    BoardStore,
    Standing,
    expire_at,
    period_key,
    standing_args,
)
from app.leaderboard.lease import LEASE_KEY, FlushLease
from app.leaderboard.queue import GROUP, STREAM, DeltaQueue
from app.notify import Notifier

log = logging.getLogger(__name__)

BUILT_KEY = "lb:built"
BATCH_MAX = 20_000
# Rooms scored by when a standing last touched them. A new key rather than the plain set
# "lb:rooms" of earlier releases: while an older instance still runs its script (a rolling
# upgrade) it SADDs that name, and a sorted set there would fail it with WRONGTYPE half-way
# through. Each flush folds whatever that old set holds into this one.
ROOMS_KEY = "lb:rooms:touched"
_OLD_ROOMS_KEY = "lb:rooms"
# A rollover touches (to send its reset) only rooms a standing touched this recently. A room
# holds a published board of an ended period only if it was touched during that period, the
# longest period is a week, and the first flush after midnight may come a little late. Older
# rooms were reset by an earlier rollover already and are dropped from ROOMS_KEY.
ROLLOVER_WINDOW_MS = 8 * 86_400_000
# A room's own keys (its published all-time rows, its published period marks, its seq) expire
# this long after it was last touched, so an idle room costs nothing. Longer than the rollover
# window, so that a room still sees its resets. A room back after that starts from nothing: its
# seq restarts at the clock's ms (SET NX), above any seq it had, since a seq starts at the
# clock's ms and grows by at most one per flush, slower than the clock; watchers see a gap.
ROOM_KEEP_MS = 35 * 86_400_000

_FLUSH = APPLY_LUA + """
if redis.call('GET', '""" + LEASE_KEY + """') ~= ARGV[1] then return {-1} end
local now, topn = tonumber(ARGV[2]), tonumber(ARGV[3])
local cur = {all = 'all', daily = ARGV[4], weekly = ARGV[5]}
local pub_expire = {daily = tonumber(ARGV[6]), weekly = tonumber(ARGV[7])}
local n = tonumber(ARGV[8])
local rooms_key = '""" + ROOMS_KEY + """'
local window, keep = """ + str(ROLLOVER_WINDOW_MS) + """, """ + str(ROOM_KEEP_MS) + """
-- rooms[room]: true when a standing (or a move) touched it, false when only a rollover did:
-- a rollover does not make a room active, or idle rooms would be touched forever.
local rooms, order = {}, {}
local function mark(room, live)
  if rooms[room] == nil then
    rooms[room] = live; order[#order + 1] = room
  elseif live then
    rooms[room] = true
  end
end
local function touch(room) mark(room, true) end
for i = 0, n - 1 do
  redis.call('XACK', '""" + STREAM + """', '""" + GROUP + """', ARGV[9 + i])
  redis.call('XDEL', '""" + STREAM + """', ARGV[9 + i])
end
local base = 9 + n
local width = """ + str(STANDING_FIELDS) + """
for i = 0, (#ARGV - base + 1) / width - 1 do
  local a = {}
  for j = 0, width - 1 do a[j + 1] = ARGV[base + i * width + j] end
  apply_standing(a, cur.daily, cur.weekly, touch)
end
if redis.call('TYPE', '""" + _OLD_ROOMS_KEY + """').ok == 'set' then
  for _, room in ipairs(redis.call('SMEMBERS', '""" + _OLD_ROOMS_KEY + """')) do
    redis.call('ZADD', rooms_key, 'NX', now, room)
  end
  redis.call('DEL', '""" + _OLD_ROOMS_KEY + """')
end
local rolled = false
for _, period in ipairs({'daily', 'weekly'}) do
  local mark_ = redis.call('GET', 'lb:rolled:' .. period)
  if mark_ ~= cur[period] then
    if mark_ and not rolled then
      rolled = true
      for _, room in ipairs(redis.call('ZRANGEBYSCORE', rooms_key, now - window, '+inf')) do mark(room, false) end
    end
    redis.call('SET', 'lb:rolled:' .. period, cur[period])
  end
end
if rolled then redis.call('ZREMRANGEBYSCORE', rooms_key, '-inf', '(' .. (now - window)) end
local out = {}
for _, room in ipairs(order) do
  if rooms[room] then redis.call('ZADD', rooms_key, now, room) end
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
    -- Fewer rows than were published: a player left the board (moved away). A delta can
    -- replace a row but not remove one, so the board goes out whole, as after a rollover.
    if redis.call('HLEN', pubkey) > #top / 2 then
      reset = 1
      redis.call('DEL', pubkey)
    end
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
  local seqkey = 'seq:' .. room
  if #changes > 0 then
    redis.call('SET', seqkey, now, 'NX')
    local seq = redis.call('INCR', seqkey)
    out[#out + 1] = room; out[#out + 1] = seq; out[#out + 1] = #changes
    for _, v in ipairs(changes) do out[#out + 1] = v end
  end
  -- Renewed on every touch; the period boards' published rows keep their own, shorter expiry.
  redis.call('PEXPIREAT', 'lb:pub:' .. room .. ':all', now + keep)
  redis.call('PEXPIREAT', 'lb:pubpk:' .. room, now + keep)
  redis.call('PEXPIREAT', seqkey, now + keep)
end
return out
"""


def _newer(a: Standing, b: Standing) -> bool:
    """Whether `a` replaces `b`, two standings of one player id in one batch. A player created
    again after an erasure is newer than any standing of the erased one (whose `created_ms` is
    older; 0, from a release that did not send it, says nothing). Then placement: a standing
    written after a move is newer than any written before it, whatever their versions; then the
    version, as for any two standings."""
    if a.created_ms and b.created_ms and a.created_ms != b.created_ms:
        return a.created_ms > b.created_ms
    return (a.moves, a.version) > (b.moves, b.version)


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
            if standing is None:
                continue  # trimmed off the stream after it was read: acknowledged, not applied
            seen = latest.get(standing.player_id)
            if seen is None or _newer(standing, seen):
                latest[standing.player_id] = standing
        if latest:
            async with self._redis.pipeline(transaction=False) as pipe:
                for s in latest.values():
                    pipe.hset("names", s.player_id, s.name)
                await pipe.execute()
        now = self._clock()
        args: list[str | int | bytes] = [
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
                delta["boards"][period] = [{**row, "rank": rank} for row, (rank, _, _) in zip(rows, slots, strict=True)]
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
            # Recorded, not acted on here: only the lease holder orders a rebuild, between its
            # own flushes, so that a rebuild already under way cannot swallow the order.
            await self._queue.mark_lost()
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
        if await self._queue.lost():
            # Standings were dropped before a flush applied them (a backlog overflow, or the
            # stream cap trimmed unread entries). MongoDB has them: rebuild. The mark is cleared
            # before the rebuild reads MongoDB, so a loss after that is marked again and is
            # answered by the next tick; one before it is covered by this rebuild.
            log.warning("delta queue dropped standings; rebuilding the read model from MongoDB")
            await self._redis.delete(BUILT_KEY)
            await self._queue.clear_lost()
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
