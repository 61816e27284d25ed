"""MongoDB repository: players, the action log, per-player totals, achievements.

No multi-document transactions (a transaction left open by a killed instance locks the
player's documents). The action-log insert is the commit point. The totals update is
idempotent: its filter requires the action id to be absent from the player document's
`applied_ids` map, and it sets that id to a nonce of the batch that applied it, so the
read-back tells exactly which records this batch applied and which another attempt (a
retry elsewhere, or one that died) applied first. An id stays in the map until its log
entry has carried its ack for PRUNE_AFTER_MS (a retry finds that ack first, so it never
reaches the totals again), which makes "applied at most once" hold for the whole life of
a challenge. A record applied by another attempt is finished by whoever meets it: a
retry, or the reconciler (app/scores/reconciler.py) for log entries left `pending`.

Every write is journaled (and `w="majority"` on a replica set) before anything is
acknowledged; a write-concern error counts as not written.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, InsertOne, ReadPreference, UpdateOne, WriteConcern
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, ConfigurationError

from app.leaderboard.periods import DAILY, STANDARD, PeriodTable, increments

# Guards of finished credits are dropped this long after their ack was stored. A retry reads
# the log (and so the ack) before it could reach the totals; this covers one that read the log
# just before the ack landed and is still on its way to the totals update (bounded in practice
# by STORE_TIMEOUT_MS, far below this).
PRUNE_AFTER_MS = 10 * 60_000
CLOCK_SKEW_MS = 5_000
# The totals document's map of points per tournament: `tournaments.<id>`, incremented by the
# same guarded update as the credit, so exactly once with it.
TOURNAMENTS = "tournaments"
_PLAYER_PROJECTION = {"applied": 0, "applied_ids": 0}
# What a credit reads back: everything the standing, the achievements and the ack need, and
# (added per batch) the guard entries of its own records, not the whole guard map.
# The period table's maps (days, weeks, ...) are added per repository.
_CREDIT_FIELDS = ("name", "region", "guild", "moves", "total", "actions", "active_days",
                  "last_ms", "unlocked", "suspended", "clock", "created_ms", TOURNAMENTS)  # created_ms: see ERASED_KEY


@dataclass(frozen=True)
class CreditRecord:
    """One action to credit, as decided by the service."""

    action_id: str
    player_id: str
    action: str
    points: int
    at_ms: int
    min_ms: int = 0  # the play clock: credits of one action by one player are this far apart
    issued_ms: int = 0  # when the challenge was issued: never credited to a player created after it
    # The tournaments the credit also counts toward, decided once at the credit on the server's
    # clock (app/tournaments/service.py credit_boards) and kept in the log entry: a retry or the
    # reconciler credits the same ones, even after they ended.
    tournaments: tuple[str, ...] = ()

    @property
    def day(self) -> str:
        """The UTC day of the credit: streaks count days, whatever periods the boards keep."""
        return DAILY.key(self.at_ms)

    @classmethod
    def from_log(cls, doc: dict) -> CreditRecord:
        return cls(doc["_id"], doc["player_id"], doc["action"], int(doc["points"]), int(doc["at_ms"]),
                   int(doc.get("min_ms", 0)), int(doc.get("issued_ms", 0)), tuple(doc.get("tournaments") or ()))


@dataclass
class CreditOutcome:
    """What the repository did with one record.

    `duplicate`: another attempt committed this action first (its log entry existed).
    `ack`: some attempt already finished it; answer that.
    `refused`: a protocol code; nothing was credited and the log entry is gone.
    Otherwise the totals hold the record and `before`/`after` are the player document
    around it; `mine` says whether this attempt applied it (else one that died, or one
    still running elsewhere, did: the caller finishes it all the same, idempotently).
    """

    duplicate: bool
    ack: dict | None = None
    before: dict | None = None
    after: dict | None = None
    mine: bool = False
    refused: str | None = None
    retry_after_ms: int | None = None


def write_concern_for(client: AsyncMongoClient) -> WriteConcern:
    """The URL's write concern, always journaled, and `w="majority"` on a replica set unless
    the URL says otherwise."""
    given = dict(client.write_concern.document)
    w = given.get("w")
    if w is None and client.options.replica_set_name:
        w = "majority"
    if w == 0:
        raise ConfigurationError("MONGODB_URL asks for w=0: unacknowledged writes cannot back a credit")
    options: dict = {"j": True}
    if w is not None:
        options["w"] = w
    if "wtimeout" in given:
        options["wtimeout"] = given["wtimeout"]
    return WriteConcern(**options)


def open_database(url: str, name: str, timeout_ms: int) -> tuple[AsyncMongoClient, AsyncDatabase]:
    client: AsyncMongoClient = AsyncMongoClient(
        url,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        timeoutMS=timeout_ms,
        tz_aware=True,
        appname="live-scoreboard",
    )
    # The primary, whatever the URL's readPreference: a credit reads back what it just wrote
    # (the totals, the stored ack), and a secondary may not have it yet. Retryable writes stay
    # the driver's default (on), so an election during a write costs a retry, not an error.
    return client, client.get_database(name, write_concern=write_concern_for(client),
                                       read_preference=ReadPreference.PRIMARY)


def _raise_unless_only_duplicates(exc: BulkWriteError) -> set[int]:
    """Indexes of the inserts that met an existing action id; anything else (another write
    error, or a write-concern error: then nothing is known durable) is raised."""
    details = exc.details or {}
    errors = details.get("writeErrors", [])
    if details.get("writeConcernErrors") or any(err.get("code") != 11000 for err in errors):
        raise exc
    return {err["index"] for err in errors}


class ScoreRepository:
    def __init__(self, db: AsyncDatabase, periods: PeriodTable = STANDARD) -> None:
        self._db = db
        self.periods = periods
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
        """Credit a batch in at most four round trips: log inserts (the commit point), acks of
        the records whose log existed, guarded totals updates, read-back. No record waits on
        another attempt: each is settled from what the read-back shows."""
        nonce = secrets.token_hex(8)
        taken: set[int] = set()
        try:
            await self.actions.bulk_write([InsertOne(_log_doc(rec)) for rec in recs], ordered=False)
        except BulkWriteError as exc:
            taken = _raise_unless_only_duplicates(exc)
        acks: dict[str, dict] = {}
        if taken:
            ids = [recs[i].action_id for i in taken]
            async for doc in self.actions.find({"_id": {"$in": ids}, "ack": {"$exists": True}}, projection={"ack": 1}):
                acks[doc["_id"]] = doc["ack"]
        todo = [i for i in range(len(recs)) if recs[i].action_id not in acks]
        docs: dict[str, dict] = {}
        if todo:
            # Write-concern errors raise BulkWriteError here: then nothing is answered as credited.
            await self.players.bulk_write([_apply_op(recs[i], nonce, self.periods) for i in todo], ordered=False)
            projection: dict = {field: 1 for field in (*_CREDIT_FIELDS, *(p.field for p in self.periods))}
            projection.update({f"applied_ids.{recs[i].action_id}": 1 for i in todo})
            ids = list({recs[i].player_id for i in todo})
            docs = {d["_id"]: d async for d in self.players.find({"_id": {"$in": ids}}, projection=projection)}
        outcomes: dict[int, CreditOutcome] = {
            i: CreditOutcome(duplicate=True, ack=acks[recs[i].action_id]) for i in range(len(recs)) if i not in todo
        }
        refused: list[str] = []
        for pid in {recs[i].player_id for i in todo}:
            doc = docs.get(pid)
            mine = [i for i in todo if recs[i].player_id == pid]
            if doc is None:
                for i in mine:
                    outcomes[i] = CreditOutcome(duplicate=i in taken, refused="token_invalid")
                continue
            guards = doc.pop("applied_ids", None) or {}
            applied_here = [i for i in mine if guards.get(recs[i].action_id) == nonce]
            replayed = _replay(doc, [recs[i] for i in applied_here], self.periods)
            for i, (before, after) in zip(applied_here, replayed, strict=True):
                outcomes[i] = CreditOutcome(duplicate=i in taken, before=before, after=after, mine=True)
            for i in mine:
                if i in outcomes:
                    continue
                if recs[i].action_id in guards:
                    # Applied by another attempt: finish it from the totals as they are now.
                    [(before, after)] = _replay(doc, [recs[i]], self.periods)
                    outcomes[i] = CreditOutcome(duplicate=i in taken, before=before, after=doc)
                elif recs[i].issued_ms and int(doc.get("created_ms") or 0) > recs[i].issued_ms + CLOCK_SKEW_MS:
                    outcomes[i] = CreditOutcome(duplicate=i in taken, refused="token_invalid")
                elif doc.get("suspended"):
                    outcomes[i] = CreditOutcome(duplicate=i in taken, refused="suspended")
                elif (wait := _play_clock_wait(doc, recs[i])) > 0:
                    outcomes[i] = CreditOutcome(duplicate=i in taken, refused="too_fast", retry_after_ms=wait)
                else:
                    outcomes[i] = CreditOutcome(duplicate=i in taken, refused="unavailable")
        for i, outcome in outcomes.items():
            # The challenge of a play-clock refusal stays usable: its log entry goes too.
            if outcome.refused in ("token_invalid", "suspended", "too_fast"):
                refused.append(recs[i].action_id)
        if refused:
            # Nothing was applied for these: the log entry goes, so that nobody finishes them later.
            await self.actions.delete_many({"_id": {"$in": refused}, "ack": {"$exists": False}})
        return [outcomes[i] for i in range(len(recs))]

    async def pending(self, before_ms: int, limit: int) -> list[CreditRecord]:
        """Log entries left without an ack since before `before_ms`: credits to finish."""
        cursor = self.actions.find({"state": "pending", "at_ms": {"$lt": before_ms}}).sort("at_ms", ASCENDING)
        return [CreditRecord.from_log(doc) async for doc in cursor.limit(limit)]

    async def prune_guards(self, now_ms: int, limit: int) -> int:
        """Drop the guards of credits finished over PRUNE_AFTER_MS ago; returns how many."""
        horizon = now_ms - PRUNE_AFTER_MS
        cursor = self.actions.find(
            {"state": "done", "at_ms": {"$lt": horizon}, "done_ms": {"$lt": horizon}}, projection={"player_id": 1}
        ).limit(limit)
        done = [doc async for doc in cursor]
        if not done:
            return 0
        await self.players.bulk_write(
            [UpdateOne({"_id": d["player_id"]}, {"$unset": {f"applied_ids.{d['_id']}": ""}}) for d in done],
            ordered=False,
        )
        await self.actions.update_many({"_id": {"$in": [d["_id"] for d in done]}}, {"$set": {"state": "closed"}})
        return len(done)

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

    async def finish_many(self, items: list[tuple[str, dict]], now_ms: int) -> list[dict]:
        """`finish` for a batch: one write, and a read-back only when another finisher won."""
        ops = [UpdateOne({"_id": aid, "ack": {"$exists": False}},
                         {"$set": {"state": "done", "ack": ack, "done_ms": now_ms}})
               for aid, ack in items]
        result = await self.actions.bulk_write(ops, ordered=False)
        if result.modified_count == len(items):
            return [ack for _, ack in items]
        stored = {d["_id"]: d.get("ack") async for d in
                  self.actions.find({"_id": {"$in": [aid for aid, _ in items]}}, projection={"ack": 1})}
        return [stored.get(aid) or ack for aid, ack in items]

    async def finish(self, action_id: str, ack: dict, now_ms: int) -> dict:
        """Store the ack once; a racing finisher gets the one stored first."""
        return (await self.finish_many([(action_id, ack)], now_ms))[0]

    async def player_achievements(self, player_id: str) -> list[dict]:
        cursor = self.achievements.find({"player_id": player_id}).sort("unlocked_ms", ASCENDING)
        return await cursor.to_list()

    async def player_credits(self, player_id: str) -> list[dict]:
        """The player's action log, oldest first (an export)."""
        return await self.actions.find({"player_id": player_id}).sort("at_ms", ASCENDING).to_list()

    async def forget_player(self, player_id: str) -> None:
        """Erasure: the player's achievements and action log go."""
        await self.achievements.delete_many({"player_id": player_id})
        await self.actions.delete_many({"player_id": player_id})

    def iter_players(self, batch_size: int = 1000):
        return self.players.find({}, projection=_PLAYER_PROJECTION, batch_size=batch_size)


def _log_doc(rec: CreditRecord) -> dict:
    return {
        "_id": rec.action_id,
        "player_id": rec.player_id,
        "action": rec.action,
        "points": rec.points,
        "at_ms": rec.at_ms,
        "min_ms": rec.min_ms,
        "issued_ms": rec.issued_ms,
        "state": "pending",
        **({TOURNAMENTS: list(rec.tournaments)} if rec.tournaments else {}),
    }


def _apply_filter(rec: CreditRecord) -> dict:
    """The totals update matches only while the action id is not applied (idempotent), never
    for a suspended player, whatever the Redis check before it said, and (the play clock)
    only `min_ms` or more after the player's last credited completion of the same action,
    however many challenges it holds open and on however many instances."""
    flt: dict = {"_id": rec.player_id, f"applied_ids.{rec.action_id}": {"$exists": False}, "suspended": {"$ne": True}}
    if rec.issued_ms > 0:
        # A challenge of an erased player must not credit a new player of the same id.
        # CLOCK_SKEW_MS of slack: instances' clocks differ a little, and a live player's
        # challenge must never be taken for an older player's.
        flt["created_ms"] = {"$not": {"$gt": rec.issued_ms + CLOCK_SKEW_MS}}
    if rec.min_ms > 0:
        last = f"clock.{rec.action}"
        flt["$or"] = [{last: {"$exists": False}}, {last: {"$lte": rec.at_ms - rec.min_ms}}]
    return flt


def _play_clock_wait(doc: dict, rec: CreditRecord) -> int:
    """How long until the play clock allows `rec` (0: it does now)."""
    last = (doc.get("clock") or {}).get(rec.action)
    if rec.min_ms <= 0 or last is None:
        return 0
    return max(0, int(last) + rec.min_ms - rec.at_ms)


def _apply_update(rec: CreditRecord, nonce: str, periods: PeriodTable) -> dict:
    return {
        "$inc": {"actions": 1, **increments(periods, rec.points, rec.at_ms),
                 **{f"{TOURNAMENTS}.{tid}": rec.points for tid in rec.tournaments}},
        "$addToSet": {"active_days": rec.day},
        "$set": {f"applied_ids.{rec.action_id}": nonce},
        "$max": {"last_ms": rec.at_ms, f"clock.{rec.action}": rec.at_ms},
    }


def _apply_op(rec: CreditRecord, nonce: str, periods: PeriodTable = STANDARD) -> UpdateOne:
    return UpdateOne(_apply_filter(rec), _apply_update(rec, nonce, periods))


def _replay(final: dict, recs: list[CreditRecord], periods: PeriodTable) -> list[tuple[dict, dict]]:
    """(before, after) of each of one player's records, in order, given the document after all
    of them: the batch's increments are taken back off, then put on again one by one."""
    start = _added(final, recs, periods, -1)
    start["actions"] = final.get("actions", 0) - len(recs)
    start["active_days"] = [d for d in final.get("active_days") or [] if (start.get("days") or {}).get(d, 0) > 0]
    out = []
    doc = start
    for rec in recs:
        after = _after(doc, rec, periods)
        out.append((doc, after))
        doc = after
    return out


def _added(doc: dict, recs: list[CreditRecord], periods: PeriodTable, sign: int) -> dict:
    """`doc` with the records' points added (sign 1) or taken off (sign -1): the total, each
    period's map and each tournament's score, as the credit's `$inc` does
    (app/leaderboard/periods.py increments)."""
    out = dict(doc)
    out["total"] = doc.get("total", 0) + sign * sum(r.points for r in recs)
    for period in periods:
        points = dict(doc.get(period.field) or {})
        for r in recs:
            key = period.key(r.at_ms)
            points[key] = points.get(key, 0) + sign * r.points
        out[period.field] = points
    if any(r.tournaments for r in recs):
        scores = dict(doc.get(TOURNAMENTS) or {})
        for r in recs:
            for tid in r.tournaments:
                scores[tid] = scores.get(tid, 0) + sign * r.points
        out[TOURNAMENTS] = scores
    return out


def _after(before: dict, rec: CreditRecord, periods: PeriodTable) -> dict:
    after = _added(before, [rec], periods, 1)
    after["actions"] = before.get("actions", 0) + 1
    active = list(before.get("active_days") or [])
    if rec.day not in active:
        active.append(rec.day)
    after["active_days"] = active
    after["last_ms"] = max(before.get("last_ms", 0), rec.at_ms)
    return after
