"""The operator log (MongoDB `operator_log`): what operators did, when, through which route, to
whom. A collection of its own, not the audit trail, which is the players' completion attempts.

One document per operator call on a player (its audit trail read, suspension and hiding,
export, erasure), refused ones included with their code: {_id, at (datetime), at_ms, action,
route, player_id, outcome ("ok" or the error code), detail (what was asked), client (the
operator's address), instance}. Kept without expiry: an erasure's own entry is the proof that
it was done. Calls with no target player (the suspects list, the stats the console polls
every second) are not logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from app.clock import iso, now_ms

log = logging.getLogger(__name__)


class OperatorLog:
    def __init__(self, db: AsyncDatabase, *, instance: str, clock: Callable[[], int] = now_ms) -> None:
        self.entries = db["operator_log"]
        self._instance = instance
        self._clock = clock

    async def ensure_indexes(self) -> None:
        await self.entries.create_index([("player_id", ASCENDING), ("at_ms", DESCENDING)])

    async def write(self, *, action: str, route: str, player_id: str, outcome: str, client: str,
                    detail: dict | None = None) -> None:
        """Store one entry. Best effort: the call it records has happened (or was refused)
        whatever this write does, so a failure is logged, never turned into the call's answer."""
        at_ms = self._clock()
        doc = {
            "at": datetime.fromtimestamp(at_ms / 1000, tz=UTC), "at_ms": at_ms, "action": action, "route": route,
            "player_id": player_id, "outcome": outcome, "detail": detail or {}, "client": client,
            "instance": self._instance,
        }
        try:
            await self.entries.insert_one(doc)
        except (PyMongoError, OSError, TimeoutError):
            log.error("operator log write failed: %s %s -> %s", route, player_id, outcome,
                      extra={"player_id": player_id, "code": outcome}, exc_info=True)

    async def of(self, player_id: str) -> list[dict]:
        """Every entry about the player, oldest first, as an export shows them."""
        found = self.entries.find({"player_id": player_id}).sort([("at_ms", ASCENDING), ("_id", ASCENDING)])
        return [
            {"at": iso(int(doc["at_ms"])), "action": doc["action"], "route": doc["route"], "outcome": doc["outcome"],
             "detail": doc.get("detail") or {}, "client": doc.get("client"), "instance": doc.get("instance")}
            async for doc in found
        ]
