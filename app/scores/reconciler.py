"""The reconciler: every half-done credit is finished within a minute, by any instance.

A credit is committed by its action-log insert; an instance that dies (or a store that
fails) after that leaves the entry `pending`: totals maybe applied, the board standing,
the achievements and the ack maybe not. Each instance scans for entries pending longer
than a grace period (so live attempts are not raced for nothing) and finishes each one
through the same idempotent path a client's retry takes; two instances finishing the
same entry at once end with one credit and one stored ack. The same pass drops the
idempotency guards of credits finished long ago (ScoreRepository.prune_guards).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable

from pymongo.errors import PyMongoError

from app.clock import now_ms
from app.errors import ProtocolError
from app.scores.repository import CreditRecord, ScoreRepository
from app.tasks import stopping

log = logging.getLogger(__name__)

SCAN_LIMIT = 1000
CONCURRENCY = 64  # finishes in flight at once: enough to fill a group-commit batch
PRUNE_LIMIT = 1000


class Reconciler:
    def __init__(
        self,
        *,
        repo: ScoreRepository,
        finish: Callable[[CreditRecord], Awaitable[object]],
        interval_s: float,
        grace_ms: int,
        on_finished: Callable[[str], None] = lambda outcome: None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self._repo = repo
        self._finish = finish
        self._interval_s = interval_s
        self._grace_ms = grace_ms
        self._on_finished = on_finished
        self._clock = clock

    async def run(self) -> None:
        while not stopping():
            # Jittered, so that instances started together do not scan in step.
            await asyncio.sleep(self._interval_s * random.uniform(0.5, 1.0))
            try:
                await self.pass_once()
            except asyncio.CancelledError:
                raise
            except (PyMongoError, OSError) as exc:
                log.warning("reconcile pass skipped: %s", exc)
            except Exception:  # noqa: BLE001 - one bad pass never stops the loop
                log.exception("reconcile pass failed")

    async def pass_once(self) -> int:
        """Finish what is pending, prune old guards; returns the credits finished."""
        now = self._clock()
        pending = await self._repo.pending(now - self._grace_ms, SCAN_LIMIT)
        gate = asyncio.Semaphore(CONCURRENCY)
        results = await asyncio.gather(*(self._one(rec, gate) for rec in pending))
        while await self._repo.prune_guards(now, PRUNE_LIMIT) == PRUNE_LIMIT:
            pass
        return sum(results)

    async def _one(self, rec: CreditRecord, gate: asyncio.Semaphore) -> int:
        async with gate:
            try:
                await self._finish(rec)
            except ProtocolError as exc:
                # suspended / no such player: refused and removed; unavailable: next pass.
                log.info("half-done credit not finished: %s", exc.code,
                         extra={"player_id": rec.player_id, "action_id": rec.action_id, "code": exc.code})
                self._on_finished(exc.code)
                return 0
        log.info("half-done credit finished", extra={"player_id": rec.player_id, "action_id": rec.action_id})
        self._on_finished("finished")
        return 1
