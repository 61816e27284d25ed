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

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, InsertOne, UpdateOne, WriteConcern
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

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
        # update_one + find_one rather than find_one_and_update: the MongoDB-wire stand-in
        # answers findAndModify with a collection scan, and both of these use the _id index.
        await self.players.update_one(
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
        )
        return await self.get_player(player_id)

    async def set_suspended(self, player_id: str, suspended: bool) -> bool:
        """False when there is no such player."""
        result = await self.players.update_one({"_id": player_id}, {"$set": {"suspended": suspended}})
        return result.matched_count == 1

    async def get_player(self, player_id: str) -> dict | None:
        return await self.players.find_one({"_id": player_id}, projection=_PLAYER_PROJECTION)

    async def find_ack(self, action_id: str) -> dict | None:
        doc = await self.actions.find_one({"_id": action_id}, projection={"ack": 1})
        return None if doc is None else doc.get("ack")

    async def credit_many(self, recs: list[CreditRecord]) -> list[CreditOutcome]:
        """`credit` for a batch, in three round trips: log inserts, totals updates, read-back.

        A record whose log insert hits an existing action id (a retry, or a concurrent
        completion of the same challenge) takes the one-by-one path of `credit`.
        """
        taken: set[int] = set()
        try:
            await self.actions.bulk_write([InsertOne(_log_doc(rec)) for rec in recs], ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(err.get("code") != 11000 for err in errors):
                raise
            taken = {err["index"] for err in errors}
        outcomes: dict[int, CreditOutcome] = {}
        fresh = [i for i in range(len(recs)) if i not in taken]
        if fresh:
            result = await self.players.bulk_write([_apply_op(recs[i]) for i in fresh], ordered=False)
            if result.matched_count < len(fresh):
                # Some id was applied meanwhile by a retry on another path: settle each alone.
                taken.update(fresh)
            else:
                ids = list({recs[i].player_id for i in fresh})
                docs = {d["_id"]: d async for d in self.players.find({"_id": {"$in": ids}}, projection=_PLAYER_PROJECTION)}
                for pid in ids:
                    mine = [i for i in fresh if recs[i].player_id == pid]
                    for i, (before, after) in zip(mine, _replay(docs[pid], [recs[i] for i in mine])):
                        outcomes[i] = CreditOutcome(duplicate=False, before=before, after=after)
        for i in sorted(taken):
            outcomes[i] = await self.credit(recs[i], inserted=i in fresh)
        return [outcomes[i] for i in range(len(recs))]

    async def credit(self, rec: CreditRecord, inserted: bool = False) -> CreditOutcome:
        """Commit the action (log insert, unless `inserted` already), then apply it to the
        totals exactly once."""
        duplicate = False
        if not inserted:
            try:
                await self.actions.insert_one(_log_doc(rec))
            except DuplicateKeyError:
                duplicate = True
                ack = await self.find_ack(rec.action_id)
                if ack is not None:
                    return CreditOutcome(duplicate=True, ack=ack)
        result = await self.players.update_one(_apply_filter(rec), _apply_update(rec))
        if result.matched_count == 0:
            # Applied already, by a concurrent attempt or one that died before writing its ack.
            return CreditOutcome(duplicate=duplicate, ack=await self._wait_for_ack(rec.action_id))
        doc = await self.players.find_one({"_id": rec.player_id}, projection=_PLAYER_PROJECTION)
        [(before, after)] = _replay(doc, [rec])
        return CreditOutcome(duplicate=duplicate, before=before, after=after)

    async def _wait_for_ack(self, action_id: str, tries: int = 20) -> dict | None:
        for _ in range(tries):
            ack = await self.find_ack(action_id)
            if ack is not None:
                return ack
            await asyncio.sleep(0.05)
        return None

    async def unlock(self, player_id: str, achievement_id: str, at_ms: int) -> bool:
        """True when this call unlocked it (the unique index keeps it once per player).
        The id is also kept on the player document, so later credits can skip the write."""
        result = await self.achievements.update_one(
            {"player_id": player_id, "achievement": achievement_id},
            {"$setOnInsert": {"unlocked_ms": at_ms}},
            upsert=True,
        )
        await self.players.update_one({"_id": player_id}, {"$addToSet": {"unlocked": achievement_id}})
        return result.upserted_id is not None

    async def finish_many(self, items: list[tuple[str, dict]]) -> list[dict]:
        """`finish` for a batch: one write, and a read-back only when another finisher won."""
        ops = [UpdateOne({"_id": aid, "ack": {"$exists": False}}, {"$set": {"state": "done", "ack": ack}})
               for aid, ack in items]
        result = await self.actions.bulk_write(ops, ordered=False)
        if result.modified_count == len(items):
            return [ack for _, ack in items]
        stored = {d["_id"]: d.get("ack") async for d in
                  self.actions.find({"_id": {"$in": [aid for aid, _ in items]}}, projection={"ack": 1})}
        return [stored.get(aid) or ack for aid, ack in items]

    async def finish(self, action_id: str, ack: dict) -> dict:
        """Store the ack once; a racing finisher gets the one stored first."""
        return (await self.finish_many([(action_id, ack)]))[0]

    async def player_achievements(self, player_id: str) -> list[dict]:
        cursor = self.achievements.find({"player_id": player_id}).sort("unlocked_ms", ASCENDING)
        return await cursor.to_list()

    def iter_players(self, batch_size: int = 1000):
        return self.players.find({}, projection=_PLAYER_PROJECTION, batch_size=batch_size)


def _log_doc(rec: CreditRecord) -> dict:
    return {
        "_id": rec.action_id,
        "player_id": rec.player_id,
        "action": rec.action,
        "points": rec.points,
        "at_ms": rec.at_ms,
        "state": "pending",
    }


def _apply_filter(rec: CreditRecord) -> dict:
    """The totals update matches only while the action id is not applied: idempotent."""
    return {"_id": rec.player_id, "applied": {"$ne": rec.action_id}}


def _apply_update(rec: CreditRecord) -> dict:
    return {
        "$inc": {"total": rec.points, "actions": 1, f"days.{rec.day}": rec.points, f"weeks.{rec.week}": rec.points},
        "$addToSet": {"active_days": rec.day},
        "$push": {"applied": {"$each": [rec.action_id], "$slice": -APPLIED_KEEP}},
        "$max": {"last_ms": rec.at_ms},
    }


def _apply_op(rec: CreditRecord) -> UpdateOne:
    return UpdateOne(_apply_filter(rec), _apply_update(rec))


def _replay(final: dict, recs: list[CreditRecord]) -> list[tuple[dict, dict]]:
    """(before, after) of each of one player's records, in order, given the document after all
    of them: the batch's increments are taken back off, then put on again one by one."""
    start = dict(final)
    start["total"] = final.get("total", 0) - sum(r.points for r in recs)
    start["actions"] = final.get("actions", 0) - len(recs)
    days = dict(final.get("days") or {})
    weeks = dict(final.get("weeks") or {})
    for r in recs:
        days[r.day] = days.get(r.day, 0) - r.points
        weeks[r.week] = weeks.get(r.week, 0) - r.points
    start["days"], start["weeks"] = days, weeks
    start["active_days"] = [d for d in final.get("active_days") or [] if days.get(d, 0) > 0]
    out = []
    doc = start
    for rec in recs:
        after = _after(doc, rec)
        out.append((doc, after))
        doc = after
    return out


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
