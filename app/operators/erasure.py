"""Erasure (PROTOCOL.md 9, a data-subject request): everything kept about a player goes, for good.

The erasure is recorded before anything is deleted, in MongoDB (`erasures`: {_id: player_id,
erased_ms}) and in Redis (app/leaderboard/boards.py ERASED_KEY), and the player document goes
last: a failure anywhere leaves the document, and the same erasure asked again does it all.
With the record in place:
- a standing still in flight (a credit that raced the erasure, a backlog) is never applied;
- a rebuild of the boards marks every erasure again before it queues anything, so it never
  brings the player back, and it erases again a document created at or before its erasure
  (a restored backup); Redis restarted empty learns them from that rebuild;
- a later session for the same id creates a new player from zero, whose `created_ms` is past
  the erasure (app/players/store.py), and which is therefore not erased again.

What stays: the audit entries (the record of what was credited), stripped of the address (they
never held a name), the operator log (which records this erasure), and the session
revocation in Redis until SESSION_TTL_S (it refuses the erased player's tokens).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from app.anticheat.behaviour import BONUS_KEY  # the difficulty bonuses (player -> bits)
from app.anticheat.suspensions import Suspensions
from app.clock import now_ms
from app.leaderboard.boards import BoardStore, Standing
from app.leaderboard.periods import ended_keys
from app.leaderboard.queue import DeltaQueue
from app.operators.audit import AuditTrail
from app.players.store import PlayerStore
from app.scores.repository import ScoreRepository
from app.tournaments.store import TournamentStore

log = logging.getLogger(__name__)


class Eraser:
    def __init__(self, *, db: AsyncDatabase, repo: ScoreRepository, redis: Redis, store: PlayerStore,
                 boards: BoardStore,
                 queue: DeltaQueue, suspensions: Suspensions, audit: AuditTrail, regions: tuple[str, ...],
                 clock: Callable[[], int] = now_ms, tournaments: TournamentStore | None = None) -> None:
        self.records = db["erasures"]
        self._repo = repo  # the credit path's records of the player (achievements, action log)
        self._redis = redis
        self._store = store
        self._boards = boards
        self._queue = queue
        self._suspensions = suspensions
        self._audit = audit
        self._regions = regions
        self._clock = clock
        self._tournaments = tournaments  # the player's entries (app/tournaments/store.py)

    async def erased_ms(self, player_id: str) -> int | None:
        """When the player was last erased, or None if it never was."""
        doc = await self.records.find_one({"_id": player_id})
        return None if doc is None else int(doc["erased_ms"])

    async def known(self) -> dict[str, int]:
        """Every erasure, player -> erased_ms (for a rebuild; erasures are few)."""
        return {doc["_id"]: int(doc["erased_ms"]) async for doc in self.records.find({})}

    async def erase(self, doc: dict) -> int:
        """Erase the player of `doc` (its document as it is now); the erasure's moment (ms)."""
        player_id = doc["_id"]
        at_ms = self._clock()
        # $max: erasing a player created again later moves the moment on, never back.
        await self.records.update_one({"_id": player_id}, {"$max": {"erased_ms": at_ms}}, upsert=True)
        await self._boards.mark_erased({player_id: at_ms})
        await self.purge(doc)
        log.info("player erased", extra={"player_id": player_id})
        return at_ms

    async def purge(self, doc: dict) -> None:
        """Delete what is kept about the player of `doc`, whose erasure is recorded (here, or by
        an earlier erasure when a rebuild meets a restored document)."""
        player_id = doc["_id"]
        # Its tournament boards too (0: their keys keep their expiry).
        scored = {tid: 0 for tid in doc.get("tournaments") or {}}
        standing = Standing.from_player(doc, self._clock(), self._boards.periods, scored)
        # Marked erased, its own standing takes it off every current board (its tournaments'
        # included): at once here, and through the flusher so that its rooms get their deltas.
        await self._boards.apply(standing)
        await self._queue.push(standing)
        # And off the boards of ended days and weeks it scored on, which stay final otherwise.
        boards = ["global", *(f"region:{code}" for code in self._regions)]
        if doc.get("guild"):
            boards.append(f"guild:{doc['guild']}")
        await self._boards.remove_everywhere(player_id, boards, ended_keys(doc, self._boards.periods))
        await self.clear(player_id)
        await self._store.delete(player_id)  # last: until then the same erasure asked again redoes it all

    async def clear(self, player_id: str) -> None:
        """Everything but the player document and the boards: Redis marks, achievements, the
        action log, the audit entries' addresses. Idempotent; also what a repeated erasure does."""
        await self._boards.forget(player_id)
        await self._suspensions.mark(player_id, False)
        await self._redis.hdel(BONUS_KEY, player_id)
        await self._repo.forget_player(player_id)
        if self._tournaments is not None:
            await self._tournaments.forget_player(player_id)
        await self._audit.anonymize(player_id)
