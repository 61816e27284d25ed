"""MongoDB repository: players, the action log, per-player totals, achievements.

No multi-document transactions (a transaction left open by a killed instance locks the
player's documents). The action-log insert is the commit point; the totals update is
idempotent because its filter requires the action id to be absent from a bounded list
of applied ids on the player document; a retry that finds a half-done credit finishes it.
Every write is journaled before anything is acknowledged.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, ReturnDocument, WriteConcern
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from app.clock import day_key, week_key

APPLIED_KEEP = 256
_PLAYER_PROJECTION = {"applied": 0}


@dataclass(frozen=True)
class CreditRecord:
    """One action to credit, as decided by the service."""

    action_id: str
    player_id: str
    action: str
    points: int
    at_ms: int

    @property
    def day(self) -> str:
        return day_key(self.at_ms)

    @property
    def week(self) -> str:
        return week_key(self.at_ms)


@dataclass
class CreditOutcome:
    """What the repository did. `duplicate`: another attempt committed this action first.
    `ack` is set when some attempt already finished it."""

    duplicate: bool
    ack: dict | None = None
    before: dict | None = None
    after: dict | None = None


def open_database(url: str, name: str, timeout_ms: int) -> tuple[AsyncMongoClient, AsyncDatabase]:
    client: AsyncMongoClient = AsyncMongoClient(
        url,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        timeoutMS=timeout_ms,
        tz_aware=True,
        appname="live-scoreboard",
    )
    return client, client.get_database(name, write_concern=WriteConcern(j=True))


class ScoreRepository:
    def __init__(self, db: AsyncDatabase) -> None:
        self._db = db
        self.players = db["players"]
        self.actions = db["actions"]
        self.achievements = db["achievements"]

    async def ensure_indexes(self) -> None:
        await self.actions.create_index([("player_id", ASCENDING), ("at_ms", DESCENDING)])
        await self.actions.create_index([("state", ASCENDING), ("at_ms", ASCENDING)])
        await self.achievements.create_index([("player_id", ASCENDING), ("achievement", ASCENDING)], unique=True)
        await self.players.create_index([("total", DESCENDING)])

    async def ping(self) -> None:
        await self._db.command("ping")

    async def upsert_player(self, player_id: str, name: str, region: str, guild: str | None, at_ms: int) -> dict:
        return await self.players.find_one_and_update(
            {"_id": player_id},
            {
                "$set": {"name": name, "region": region, "guild": guild},
                "$setOnInsert": {
                    "created_ms": at_ms,
                    "total": 0,
                    "actions": 0,
                    "days": {},
                    "weeks": {},
                    "active_days": [],
                    "applied": [],
                    "last_ms": 0,
                },
            },
            upsert=True,
            projection=_PLAYER_PROJECTION,
            return_document=ReturnDocument.AFTER,
        )

    async def set_suspended(self, player_id: str, suspended: bool) -> dict | None:
        return await self.players.find_one_and_update(
            {"_id": player_id},
            {"$set": {"suspended": suspended}},
            projection=_PLAYER_PROJECTION,
            return_document=ReturnDocument.AFTER,
        )

    async def get_player(self, player_id: str) -> dict | None:
        return await self.players.find_one({"_id": player_id}, projection=_PLAYER_PROJECTION)

    async def find_ack(self, action_id: str) -> dict | None:
        doc = await self.actions.find_one({"_id": action_id}, projection={"ack": 1})
        return None if doc is None else doc.get("ack")

    async def credit(self, rec: CreditRecord) -> CreditOutcome:
        """Commit the action (log insert), then apply it to the totals exactly once."""
        duplicate = False
        try:
            await self.actions.insert_one(
                {
                    "_id": rec.action_id,
                    "player_id": rec.player_id,
                    "action": rec.action,
                    "points": rec.points,
                    "at_ms": rec.at_ms,
                    "state": "pending",
                }
            )
        except DuplicateKeyError:
            duplicate = True
            ack = await self.find_ack(rec.action_id)
            if ack is not None:
                return CreditOutcome(duplicate=True, ack=ack)
        before = await self.players.find_one_and_update(
            {"_id": rec.player_id, "applied": {"$ne": rec.action_id}},
            {
                "$inc": {
                    "total": rec.points,
                    "actions": 1,
                    f"days.{rec.day}": rec.points,
                    f"weeks.{rec.week}": rec.points,
                },
                "$addToSet": {"active_days": rec.day},
                "$push": {"applied": {"$each": [rec.action_id], "$slice": -APPLIED_KEEP}},
                "$max": {"last_ms": rec.at_ms},
            },
            projection=_PLAYER_PROJECTION,
            return_document=ReturnDocument.BEFORE,
        )
        if before is None:
            # Applied already, by a concurrent attempt or one that died before writing its ack.
            return CreditOutcome(duplicate=duplicate, ack=await self._wait_for_ack(rec.action_id))
        return CreditOutcome(duplicate=duplicate, before=before, after=_after(before, rec))

    async def _wait_for_ack(self, action_id: str, tries: int = 20) -> dict | None:
        for _ in range(tries):
            ack = await self.find_ack(action_id)
            if ack is not None:
                return ack
            await asyncio.sleep(0.05)
        return None

    async def unlock(self, player_id: str, achievement_id: str, at_ms: int) -> bool:
        """True when this call unlocked it (the unique index keeps it once per player)."""
        result = await self.achievements.update_one(
            {"player_id": player_id, "achievement": achievement_id},
            {"$setOnInsert": {"unlocked_ms": at_ms}},
            upsert=True,
        )
        return result.upserted_id is not None

    async def finish(self, action_id: str, ack: dict) -> dict:
        """Store the ack once; a racing finisher gets the one stored first."""
        doc = await self.actions.find_one_and_update(
            {"_id": action_id, "ack": {"$exists": False}},
            {"$set": {"state": "done", "ack": ack}},
            projection={"ack": 1},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            stored = await self.find_ack(action_id)
            return stored if stored is not None else ack
        return doc["ack"]

    async def player_achievements(self, player_id: str) -> list[dict]:
        cursor = self.achievements.find({"player_id": player_id}).sort("unlocked_ms", ASCENDING)
        return await cursor.to_list()

    def iter_players(self, batch_size: int = 1000):
        return self.players.find({}, projection=_PLAYER_PROJECTION, batch_size=batch_size)


def _after(before: dict, rec: CreditRecord) -> dict:
    after = dict(before)
    after["total"] = before.get("total", 0) + rec.points
    after["actions"] = before.get("actions", 0) + 1
    days = dict(before.get("days") or {})
    days[rec.day] = days.get(rec.day, 0) + rec.points
    weeks = dict(before.get("weeks") or {})
    weeks[rec.week] = weeks.get(rec.week, 0) + rec.points
    after["days"], after["weeks"] = days, weeks
    active = list(before.get("active_days") or [])
    if rec.day not in active:
        active.append(rec.day)
    after["active_days"] = active
    after["last_ms"] = max(before.get("last_ms", 0), rec.at_ms)
    return after
