"""Keeps each player's `suspicion` current, and serves its difficulty bonus to action:start.

The audit writer tells the Scorer which players it just stored attempts of (`touch`). About
once a second the Scorer scores those players (app/anticheat/scoring.py) from their newest
audit entries, and:

- writes `suspicion` on the player document (MongoDB, the truth every instance reads and
  that survives restarts) only when the verdict changed meaningfully (scoring.worth_storing),
  never creating a document: an erased player stays erased;
- keeps the bonus in the Redis hash `difficulty:bonus` (player -> bits, absent = 0), which
  DifficultyBonus reads (one HGET per player every few seconds). A bonus is set again at every scoring (a
  Redis restarted empty is refilled), and removed when the stored one drops to 0.

A player is scored at most once every RESCORE_MS however fast it plays, and while its
bonus stays the same that interval doubles, up to MAX_RESCORE_MS: a steady player costs one
audit read every half minute, a changing one (a bot being found out) one every few seconds.

Memory is bounded: at most MAX_DIRTY players wait (the excess is dropped and counted; they
are scored at their next completion), at most MAX_PER_PASS are scored per pass.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from pymongo.asynchronous.collection import AsyncCollection
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.anticheat.scoring import MAX_BONUS_BITS, WINDOW, Stretch, Verdict, score, suspicion_doc, worth_storing
from app.breaker import Breaker
from app.clock import now_ms
from app.leaderboard.keys import BONUS_KEY
from app.tasks import stopping

log = logging.getLogger(__name__)

PASS_S = 1.0
# A player is scored at most once in this, however often it is touched: a fast player's
# attempts are scored in groups, so scoring costs a fraction of a store read per completion
# (a scoring is ~2 ms of this process's CPU: 200 audit documents decoded and scored).
RESCORE_MS = 5_000
MAX_RESCORE_MS = 30_000
MAX_DIRTY = 20_000
MAX_PER_PASS = 2_000
# action:start's view of a bonus may lag the scorer's by this much.
BONUS_CACHE_MS = 3_000
BONUS_CACHE_SIZE = 50_000
CONCURRENCY = 8  # players scored at once: each is one audit read, one player read, maybe a write


class RecentAttempts(Protocol):
    """The audit trail as the scorer reads it (app/operators/audit.py AuditTrail)."""

    async def recent(self, player_id: str, limit: int) -> list[dict]: ...


class Scorer:
    def __init__(
        self,
        *,
        trail: RecentAttempts,
        players: AsyncCollection,
        redis: Redis,
        slot_ms: Mapping[str, int],
        clock: Callable[[], int] = now_ms,
        interval_s: float = PASS_S,
        rescore_ms: int = RESCORE_MS,
        max_rescore_ms: int = MAX_RESCORE_MS,
        max_dirty: int = MAX_DIRTY,
        on_dropped: Callable[[int], None] = lambda count: None,
    ) -> None:
        """`players`: the MongoDB `players` collection. `slot_ms`: scoring.slots(catalogue)."""
        self._trail = trail
        self._players = players
        self._redis = redis
        self._slot_ms = dict(slot_ms)
        self._clock = clock
        self._interval_s = interval_s
        self._rescore_ms = rescore_ms
        self._max_rescore_ms = max(rescore_ms, max_rescore_ms)
        self._max_dirty = max_dirty
        self._on_dropped = on_dropped
        self._dirty: dict[str, None] = {}  # an ordered set: the longest waiting first
        # Players scored within max_rescore_ms: when, and the interval before the next scoring.
        self._scored_at: dict[str, tuple[int, int]] = {}
        self._unsynced: set[str] = set()  # whose bonus Redis may not hold yet: synced at their next scoring
        self._failing = False
        self.dropped = 0
        self.writes = 0  # player documents written: what "only when it changed" is measured by

    @property
    def waiting(self) -> int:
        return len(self._dirty)

    def touch(self, player_ids: Iterable[str]) -> None:
        """Mark players to be scored (the audit writer's `on_written`). Never waits, never raises."""
        dropped = 0
        for pid in player_ids:
            if pid in self._dirty:
                continue
            if len(self._dirty) >= self._max_dirty:
                dropped += 1
                continue
            self._dirty[pid] = None
        if dropped:
            if not self.dropped:
                log.warning("behaviour scoring: more than %d players waiting; the excess waits for its next "
                            "completion", self._max_dirty)
            self.dropped += dropped
            self._on_dropped(dropped)

    async def run(self) -> None:
        while not stopping():
            await asyncio.sleep(self._interval_s)
            try:
                await self.pass_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - one bad pass never stops the loop
                log.exception("behaviour scoring pass failed")

    async def pass_once(self) -> int:
        """Score the waiting players that are due; returns how many were scored."""
        now = self._clock()
        self._scored_at = {pid: last for pid, last in self._scored_at.items() if now - last[0] < self._max_rescore_ms}
        due = []
        for pid in self._dirty:
            last = self._scored_at.get(pid)
            if last is None or now - last[0] >= last[1]:
                due.append(pid)
                if len(due) >= MAX_PER_PASS:
                    break
        for pid in due:
            del self._dirty[pid]
        gate = asyncio.Semaphore(CONCURRENCY)
        results = await asyncio.gather(*(self._one(pid, gate) for pid in due))
        if self._failing and all(results):
            log.info("behaviour scoring: working again")
            self._failing = False
        return sum(results)

    async def _one(self, player_id: str, gate: asyncio.Semaphore) -> bool:
        async with gate:
            try:
                await self.score_player(player_id)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - one player (or a store outage) never stops the others
                # Tried again after rescore_ms, not at once: an outage costs a read a few seconds per player.
                self._scored_at[player_id] = (self._clock(), self._rescore_ms)
                self.touch([player_id])
                if not self._failing:  # once until a pass goes through whole, not per player
                    log.warning("behaviour scoring failed; retrying", exc_info=True, extra={"player_id": player_id})
                self._failing = True
                return False
        return True

    async def score_player(self, player_id: str) -> Verdict | None:
        """Score one player now (whatever the rescore interval), store what changed, and return
        the verdict; None when there is no such player (erased, or never created)."""
        last = self._scored_at.get(player_id)
        doc = await self._players.find_one({"_id": player_id}, projection={"suspicion": 1})
        if doc is None:
            self._scored_at[player_id] = (self._clock(), self._max_rescore_ms)
            self._unsynced.discard(player_id)
            await self._redis.hdel(BONUS_KEY, player_id)
            return None
        stored: dict[str, Any] | None = doc.get("suspicion")
        if not isinstance(stored, dict) or not stored:
            stored = None  # none yet, or not one this code wrote: replaced by the new verdict
        entries = await self._trail.recent(player_id, WINDOW)
        verdict = score(entries, carry=Stretch.from_signals(stored and stored.get("signals")), slot_ms=self._slot_ms)
        old_bonus = (stored or {}).get("difficulty_bonus") or 0
        now = self._clock()
        if worth_storing(stored, verdict, entries):
            # No upsert: a player erased meanwhile is not brought back by its audit entries.
            await self._players.update_one({"_id": player_id},
                                           {"$set": {"suspicion": suspicion_doc(verdict, stored, now)}})
            self.writes += 1
        if last is None or verdict.difficulty_bonus != old_bonus:
            interval = self._rescore_ms
        else:
            # The same bonus: look again later, the later the steadier it has been.
            interval = min(self._max_rescore_ms, 2 * last[1])
        self._scored_at[player_id] = (now, interval)
        if verdict.difficulty_bonus or old_bonus or player_id in self._unsynced:
            self._unsynced.add(player_id)  # until Redis has it: only players whose last sync failed stay
            if verdict.difficulty_bonus:
                await self._redis.hset(BONUS_KEY, player_id, verdict.difficulty_bonus)
            else:
                await self._redis.hdel(BONUS_KEY, player_id)
            self._unsynced.discard(player_id)
        return verdict


class DifficultyBonus:
    """A player's extra proof-of-work bits for its next challenge, from the Redis hash. Each
    answer is kept for BONUS_CACHE_MS (at most BONUS_CACHE_SIZE players), so a player asking
    for challenges as fast as it may costs one HGET every few seconds, not one per challenge;
    a new bonus reaches its challenges that much later. Fails open: while Redis is away every
    player gets the catalogue's difficulty. action:start reads the hash in its admission round
    trip (app/anticheat/limits.py), through `cached` and `remember`; `bonus` reads it alone."""

    def __init__(self, redis: Redis, *, breaker: Breaker, clock: Callable[[], int] = now_ms,
                 cache_ms: int = BONUS_CACHE_MS, cache_size: int = BONUS_CACHE_SIZE) -> None:
        self._redis = redis
        self._breaker = breaker
        self._clock = clock
        self._cache_ms = cache_ms
        self._cache_size = cache_size
        self._cache: dict[str, tuple[int, int]] = {}  # player -> (read at, bits); oldest read first
        self._failing = False

    def cached(self, player_id: str) -> int | None:
        """The bonus read less than cache_ms ago; None when it is to be read again."""
        cached = self._cache.get(player_id)
        if cached is not None and self._clock() - cached[0] < self._cache_ms:
            return cached[1]
        return None

    def remember(self, player_id: str, raw: bytes | str | int | None) -> int:
        """Keep what Redis answered for the player (the hash's value, None or empty when absent),
        clamped to 0..MAX_BONUS_BITS; returns it."""
        self._failing = False
        try:
            bits = max(0, min(MAX_BONUS_BITS, int(raw or 0)))
        except ValueError:
            bits = 0
        self._cache.pop(player_id, None)
        while len(self._cache) >= self._cache_size:
            del self._cache[next(iter(self._cache))]  # the oldest read
        self._cache[player_id] = (self._clock(), bits)
        return bits

    async def bonus(self, player_id: str) -> int:
        cached = self.cached(player_id)
        if cached is not None:
            return cached
        if not self._breaker.ready():
            return 0
        try:
            raw = await self._redis.hget(BONUS_KEY, player_id)
        except (RedisError, OSError):
            self._breaker.trip()
            if not self._failing:  # once per outage, not per challenge
                log.warning("difficulty bonus skipped while Redis is unavailable", exc_info=True)
            self._failing = True
            return 0
        return self.remember(player_id, raw)
