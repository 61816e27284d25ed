"""Once per LEADERBOARD_FLUSH_MS, the lease holder turns the queue into one delta per changed room.

A flush is one Lua script run (flush.lua, after apply.lua's functions) on one server, or one
per board family on a Redis Cluster (app/leaderboard/keys.py: a family's boards, its room's
published rows and seq are in one hash slot; BoardStore.run_parts): a run applies its part
of the batch, diffs each changed room's top TOP_N against what was last published, bumps the
room's `seq` and stores the new published rows, atomically. On a cluster `global` runs last
(it holds the placements that say which families a standing visits; app/leaderboard/boards.py
Placement), and the queue entries are acknowledged only after every part succeeded. A flush
that died half-way is redone whole by the next holder, and a part redone changes nothing
(standings are absolute and versioned, moves are counted), so each standing is applied exactly
once in effect. Only the emit can be lost with a dying instance; `seq` then shows a gap and
the watcher asks for a fresh snapshot, as PROTOCOL.md section 6 says. Names are written once
per flush, and read once for all its deltas. An instance that lost the lease during its flush
may still finish the parts it had sent: each is atomic and idempotent, and its deltas carry
the next seqs of their rooms.

Published rows also serve `watch` snapshots, so a snapshot at `seq` N is exactly the
board that deltas up to N describe.

A flush looks at the rooms of its standings, the rooms players moved out of (their rows
below move up), and, on the first flush of a new period (a day, a week), the rooms active
within the rollover window (PeriodTable.rollover_window_ms; their reset). Rooms idle longer
are never looked at again, and their own keys expire (ROOM_KEEP_MS).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from app.clock import iso, now_ms
from app.leaderboard import keys
from app.leaderboard.boards import BoardStore, Standing, player_of, row, script
from app.leaderboard.keys import BUILT_KEY, EVERY_FAMILY, GROUP, OLD_ROOMS_KEY, ROLLED_PREFIX, ROOMS_KEY, STREAM
from app.leaderboard.lease import FlushLease
from app.leaderboard.periods import ALL
from app.leaderboard.queue import DeltaQueue
from app.notify import Notifier

log = logging.getLogger(__name__)

__all__ = ["BUILT_KEY", "ROOMS_KEY", "FlushLoop", "Flusher", "LeaseLost"]

BATCH_MAX = 20_000
# A room's own keys (its published all-time rows, its published period marks, its seq) expire
# this long after it was last touched, so an idle room costs nothing. Longer than the rollover
# window (PeriodTable.rollover_window_ms), so that a room still sees its resets. A room back
# after that starts from nothing: its seq restarts at the clock's ms (SET NX), above any seq it
# had, since a seq starts at the clock's ms and grows by at most one per flush, slower than the
# clock; watchers see a gap.
ROOM_KEEP_MS = 35 * 86_400_000
# Rooms that show an all-time board only (no daily or weekly boards of their own).
ALL_ONLY_ROOMS: tuple[str, ...] = ("tournament:",)
ACK_SLICE = 1000
_COMPACT = (",", ":")


def _newer(a: Standing, b: Standing) -> bool:
    """Whether `a` replaces `b`, two standings of one player id in one batch. A player created
    again after an erasure is newer than any standing of the erased one (whose `created_ms` is
    older; 0, from a release that did not send it, says nothing). Then placement: a standing
    written after a move is newer than any written before it, whatever their versions; then the
    version, as for any two standings."""
    if a.created_ms and b.created_ms and a.created_ms != b.created_ms:
        return a.created_ms > b.created_ms
    return (a.moves, a.version) > (b.moves, b.version)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class LeaseLost(Exception):
    """The flush was fenced off: another instance holds the lease now."""


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
        self._script = redis.register_script(script("flush.lua"))

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
            if seen is None:
                latest[standing.player_id] = standing
            else:
                newer, older = (standing, seen) if _newer(standing, seen) else (seen, standing)
                latest[standing.player_id] = newer.with_boards_of(older)
        if latest:
            await self._boards.set_names({s.player_id: s.name for s in latest.values()})
        if await self._lease.current_holder() != self._lease.holder:
            raise LeaseLost()
        now = self._clock()
        table = self._boards.periods
        periods: list[list] = [[ALL, ALL, 0]]
        periods += [[p.name, p.period_key(now), table.publish_expire_at(p, now)] for p in table]
        placement = await self._boards.placement(list(latest.values()))
        rolled, rollover_rooms = await self._rollover(periods, now, table.rollover_window_ms)
        for room in rollover_rooms:
            placement.families.setdefault(room, [])
        context = {
            "prefixes": keys.SCRIPT_PREFIXES, "now": str(now), "topn": self._top_n, "periods": periods,
            "keep": ROOM_KEEP_MS, "all_only": ALL_ONLY_ROOMS,
        }

        def args(family: str) -> list[str]:
            # The rollover rooms this run publishes: all of them, or its own family's.
            if family == EVERY_FAMILY:
                rolled_here = sorted(rollover_rooms)
            else:
                rolled_here = [family] if family in rollover_rooms else []
            ctx = {**context, "family": family, "rolled": rolled_here}
            return [json.dumps(ctx, separators=_COMPACT), placement.batch(family)]

        results = await self._boards.run_parts(self._script, placement, args)
        await self._boards.forget_names([pid for result in results for pid in result.get("erased") or []])
        touched = [room for result in results for room in result.get("live") or []]
        await self._settle(now, touched, rolled, table.rollover_window_ms, [entry_id for entry_id, _ in entries])
        found = [delta for result in results for delta in result.get("deltas") or []]
        deltas = await self._deltas(found, iso(self._clock()))
        for delta in deltas:
            await self._notifier.to_room(delta["room"], "leaderboard:delta", delta)
        return deltas

    async def _rollover(self, periods: list[list], now: int, window_ms: int) -> tuple[list[list], set[str]]:
        """The periods (other than `all`) whose current key is new, and, when one that was seen
        before rolled over, the rooms a standing touched within the window: their resets."""
        async with self._redis.pipeline(transaction=False) as pipe:  # GETs, not MGET: the keys' slots differ
            for name, _, _ in periods[1:]:
                pipe.get(ROLLED_PREFIX + name)
            seen = [None if was is None else _text(was) for was in await pipe.execute()]
        changed = [(name, pk, was) for (name, pk, _), was in zip(periods[1:], seen, strict=True) if was != pk]
        rolled = [[name, pk] for name, pk, _ in changed]
        if not any(was is not None for _, _, was in changed):
            return rolled, set()
        rooms = await self._redis.zrangebyscore(ROOMS_KEY, now - window_ms, "+inf")
        return rolled, {_text(room) for room in rooms}  # type: ignore[arg-type]  # members: no WITHSCORES

    async def _settle(self, now: int, touched: list[str], rolled: list[list], window_ms: int,
                      entry_ids: list[bytes]) -> None:
        """After every family's part: the rooms touched, the periods seen, then the entries
        acknowledged and deleted. Single keys each, anywhere on a cluster."""
        if await self._redis.type(OLD_ROOMS_KEY) in (b"set", "set"):
            # What an instance of an older release still SADDs, folded in (see keys.ROOMS_KEY).
            old = [_text(room) for room in await self._redis.smembers(OLD_ROOMS_KEY)]
            if old:
                await self._redis.zadd(ROOMS_KEY, dict.fromkeys(old, now), nx=True)
            await self._redis.delete(OLD_ROOMS_KEY)
        async with self._redis.pipeline(transaction=False) as pipe:
            if touched:
                pipe.zadd(ROOMS_KEY, dict.fromkeys(touched, now))
            for name, pk in rolled:
                pipe.set(ROLLED_PREFIX + name, pk)
            if rolled:
                pipe.zremrangebyscore(ROOMS_KEY, "-inf", f"({now - window_ms}")
            for start in range(0, len(entry_ids), ACK_SLICE):
                ids = entry_ids[start:start + ACK_SLICE]
                pipe.xack(STREAM, GROUP, *ids)
                pipe.xdel(STREAM, *ids)
            await pipe.execute()

    async def _deltas(self, found: list[dict], at: str) -> list[dict]:
        """The scripts' deltas as PROTOCOL.md section 6 shows them, with every row's name read
        in one command."""
        ids = {player_of(member) for room in found for board in room["boards"]
               for _, member, _ in board["rows"] or []}  # an empty Lua table comes back as {}
        names = await self._boards.name_map(list(ids))
        deltas: list[dict] = []
        for room in found:
            delta: dict = {"room": room["room"], "seq": int(room["seq"]), "at": at, "boards": {}}
            resets = []
            for board in room["boards"]:
                delta["boards"][board["period"]] = [row(int(rank), member, float(score), names)
                                                    for rank, member, score in board["rows"] or []]
                if board["reset"]:
                    resets.append(board["period"])
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
