"""The audit trail: every completion attempt that passed the signature check, credited or
refused, with its evidence (PROTOCOL.md section 9), kept AUDIT_RETENTION_DAYS by a TTL index.

Attempts are recorded without waiting: `record` appends to a bounded queue and a writer
stores what gathered every WRITE_INTERVAL_S in one bulk insert. So a flood of refused
attempts costs a handful of writes a second, whatever its size; past MAX_PENDING waiting
entries the excess is dropped and counted (`scoreboard_audit_dropped_total`), never kept.
A batch the store refused waits for the next round, within the same bound.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from app.clock import iso
from app.errors import ProtocolError
from app.tasks import stopping

log = logging.getLogger(__name__)

MAX_PENDING = 20_000
BATCH_MAX = 1000
WRITE_INTERVAL_S = 0.2
_CURSOR = re.compile(r"^(\d{1,15})\.([0-9a-f]{24})$")


@dataclass(frozen=True)
class AuditEntry:
    player_id: str
    action_id: str
    action: str
    outcome: str  # "credited" or the protocol error code
    points: int
    started_ms: int
    completed_ms: int
    min_ms: int
    difficulty: int
    client: str
    duplicate: bool = False

    def to_doc(self, instance: str) -> dict:
        return {
            "player_id": self.player_id, "action_id": self.action_id, "action": self.action,
            "outcome": self.outcome, "duplicate": self.duplicate, "points": self.points,
            "started_ms": self.started_ms, "completed_ms": self.completed_ms,
            "play_ms": self.completed_ms - self.started_ms, "min_ms": self.min_ms,
            "difficulty": self.difficulty, "instance": instance, "client": self.client,
            "at": datetime.fromtimestamp(self.completed_ms / 1000, tz=UTC),
        }


def public_entry(doc: dict) -> dict:
    """An audit document as the operator routes show it."""
    return {
        "action_id": doc["action_id"], "action": doc["action"], "outcome": doc["outcome"],
        "duplicate": bool(doc.get("duplicate")), "points": int(doc.get("points", 0)),
        "started_at": iso(int(doc["started_ms"])), "completed_at": iso(int(doc["completed_ms"])),
        "play_ms": int(doc["play_ms"]), "difficulty": int(doc["difficulty"]),
        "instance": doc.get("instance"), "client": doc.get("client"),
    }


def encode_cursor(doc: dict) -> str:
    return f"{int(doc['completed_ms'])}.{doc['_id']}"


def decode_cursor(cursor: str) -> tuple[int, ObjectId]:
    match = _CURSOR.match(cursor)
    if not match:
        raise ProtocolError("invalid_payload", "cursor is not one this server gave")
    return int(match.group(1)), ObjectId(match.group(2))


class AuditTrail:
    def __init__(
        self,
        db: AsyncDatabase,
        *,
        instance: str,
        retention_days: int,
        on_written: Callable[[set[str]], None] = lambda player_ids: None,
        on_dropped: Callable[[int], None] = lambda count: None,
        max_pending: int = MAX_PENDING,
        enabled: bool = True,
    ) -> None:
        self.entries = db["audit"]
        self._instance = instance
        self._retention_s = retention_days * 86_400
        self._on_written = on_written
        self._on_dropped = on_dropped
        self._max_pending = max_pending
        self._enabled = enabled
        self._pending: deque[dict] = deque()
        self._wake = asyncio.Event()

    @property
    def backlog(self) -> int:
        return len(self._pending)

    async def ensure_indexes(self) -> None:
        await self.entries.create_index([("player_id", ASCENDING), ("completed_ms", DESCENDING), ("_id", DESCENDING)])
        await self.entries.create_index("at", expireAfterSeconds=self._retention_s)

    def record(self, entry: AuditEntry) -> None:
        """Queue one attempt; never waits. Past the bound it is dropped and counted."""
        if not self._enabled:
            return
        if len(self._pending) >= self._max_pending:
            self._on_dropped(1)
            return
        self._pending.append(entry.to_doc(self._instance))
        self._wake.set()

    async def run(self) -> None:
        """Store what gathered, every WRITE_INTERVAL_S at most: one insert per batch."""
        while not stopping():
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(WRITE_INTERVAL_S)  # let a burst gather into one write
            try:
                while self._pending:
                    await self.flush()
            except asyncio.CancelledError:
                raise
            except (PyMongoError, OSError) as exc:
                log.warning("audit write failed (%d entries wait): %s", len(self._pending), exc)
                self._wake.set()  # try again next round
            except Exception:  # noqa: BLE001 - one bad batch never stops the writer
                log.exception("audit write failed")

    async def flush(self) -> int:
        batch = [self._pending.popleft() for _ in range(min(BATCH_MAX, len(self._pending)))]
        if not batch:
            return 0
        try:
            await self.entries.insert_many(batch, ordered=False)
        except (PyMongoError, OSError):
            # Not stored: back to the front, in order, within the bound. (A cancelled insert may
            # have landed: it is not queued again.)
            room = self._max_pending - len(self._pending)
            keep = batch[:max(0, room)]
            self._pending.extendleft(reversed(keep))
            if len(keep) < len(batch):
                self._on_dropped(len(batch) - len(keep))
            raise
        self._on_written({doc["player_id"] for doc in batch})
        return len(batch)

    async def close(self) -> None:
        """Store what is queued, within a bound; the rest is dropped and counted."""
        with suppress(PyMongoError, OSError, asyncio.TimeoutError):
            async with asyncio.timeout(5):
                while self._pending:
                    await self.flush()
        if self._pending:
            self._on_dropped(len(self._pending))
            self._pending.clear()

    async def page(self, player_id: str, limit: int, cursor: str | None) -> dict:
        """Newest first; `next_cursor` continues after the last entry given, or is None."""
        query: dict = {"player_id": player_id}
        if cursor is not None:
            ms, oid = decode_cursor(cursor)
            query["$or"] = [{"completed_ms": {"$lt": ms}}, {"completed_ms": ms, "_id": {"$lt": oid}}]
        found = self.entries.find(query).sort([("completed_ms", DESCENDING), ("_id", DESCENDING)]).limit(limit + 1)
        docs = [doc async for doc in found]
        more = len(docs) > limit
        docs = docs[:limit]
        return {"entries": [public_entry(d) for d in docs], "next_cursor": encode_cursor(docs[-1]) if more else None}

    async def recent(self, player_id: str, limit: int) -> list[dict]:
        found = self.entries.find({"player_id": player_id}).sort([("completed_ms", DESCENDING), ("_id", DESCENDING)])
        return [doc async for doc in found.limit(limit)]

    async def all_of(self, player_id: str) -> list[dict]:
        """Every entry of a player, oldest first, for an export."""
        found = self.entries.find({"player_id": player_id}).sort([("completed_ms", ASCENDING), ("_id", ASCENDING)])
        return [public_entry(doc) async for doc in found]

    async def anonymize(self, player_id: str) -> int:
        """Erasure: the entries stay (the trail of what was credited) but keep no address."""
        result = await self.entries.update_many({"player_id": player_id}, {"$set": {"client": None}})
        return result.modified_count
