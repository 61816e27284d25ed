"""The session side of the player documents (MongoDB `players`): creation, profile changes,
revocation. The credit path writes the totals of the same documents (app/scores/repository.py).

A player document is created once, by an insert on its unique `_id`: of two sessions racing
to create the same player exactly one inserts, and the other finds a player that exists.
It records how it was minted (`minted_by`: "guest" or "api") and, for a guest, only the
SHA-256 of its guest key: the key is 256 random bits, so a plain hash is as good as a slow
one, and nothing stored lets anyone present the key.

A player created again after an erasure (PROTOCOL.md 9) is a new player from zero, and its
`created_ms` is always after the erasure's moment, whatever the clocks of the instance that
erased and the one that creates: that order is what tells it from a restored backup of the
erased one (app/leaderboard/boards.py ERASED_KEY, app/leaderboard/rebuild.py).
"""

from __future__ import annotations

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

# The credit path's idempotency bookkeeping, of no use to anyone reading a player.
_PROJECTION = {"applied": 0, "applied_ids": 0}


class PlayerStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self.players = db["players"]
        self.erasures = db["erasures"]  # written by app/operators/erasure.py

    async def get(self, player_id: str) -> dict | None:
        return await self.players.find_one({"_id": player_id}, projection=_PROJECTION)

    async def create(self, player_id: str, name: str, region: str, guild: str | None, at_ms: int,
                     guest_key_sha256: str | None) -> dict | None:
        """The new player's document, or None when the id exists already (a racing session
        may have created it a moment ago). Without `guest_key_sha256` it was minted with the
        API key, and no guest session can ever be had for it."""
        erased = await self.erasures.find_one({"_id": player_id}, projection={"erased_ms": 1})
        created_ms = max(at_ms, int(erased["erased_ms"]) + 1) if erased else at_ms
        doc: dict = {
            "_id": player_id,
            "name": name,
            "region": region,
            "guild": guild,
            "created_ms": created_ms,
            "minted_by": "guest" if guest_key_sha256 else "api",
            "total": 0,
            "actions": 0,
            "moves": 0,
            "days": {},
            "weeks": {},
            "active_days": [],
            "last_ms": 0,
        }
        if guest_key_sha256:
            doc["guest_key_sha256"] = guest_key_sha256
        try:
            await self.players.insert_one(doc)
        except DuplicateKeyError:
            return None
        return doc

    async def change(self, doc: dict, name: str, region: str, guild: str | None) -> bool:
        """Set the new name, region and guild, if the document still has the ones in `doc`
        (False: another session changed it first; read it again and retry). A new region or
        guild counts one more move in the same write, which is how the flusher knows that a
        standing with more moves replaces the player's rows on the old boards."""
        moved = region != doc["region"] or guild != doc.get("guild")
        update: dict = {"$set": {"name": name, "region": region, "guild": guild}}
        if moved:
            update["$inc"] = {"moves": 1}
        # `guild: None` matches a null or missing guild alike.
        old = {"_id": doc["_id"], "name": doc["name"], "region": doc["region"], "guild": doc.get("guild")}
        result = await self.players.update_one(old, update)
        return result.matched_count == 1

    async def set_moderation(self, player_id: str, suspended: bool, hidden: bool) -> dict | None:
        """An operator's decision on the player; the document after it, or None when there is
        no such player. Only these two flags change: no point is credited or taken."""
        return await self.players.find_one_and_update(
            {"_id": player_id}, {"$set": {"suspended": suspended, "hidden": hidden}},
            projection=_PROJECTION, return_document=ReturnDocument.AFTER,
        )

    async def delete(self, player_id: str) -> bool:
        """Erasure: the document goes (profile, totals, guard map, suspicion); False if none was."""
        return (await self.players.delete_one({"_id": player_id})).deleted_count == 1

    async def revoke_sessions(self, player_id: str, at_ms: int) -> int | None:
        """Refuse every session issued before `at_ms` (never moved back by an older revocation).
        The stored moment, or None when there is no such player."""
        result = await self.players.update_one({"_id": player_id}, {"$max": {"revoked_before": at_ms}})
        if result.matched_count == 0:
            return None
        return await self.revoked_before(player_id)

    async def revoked_before(self, player_id: str) -> int:
        """Sessions issued before this moment (ms) are revoked; 0 when none is."""
        doc = await self.players.find_one({"_id": player_id}, projection={"revoked_before": 1})
        return int((doc or {}).get("revoked_before") or 0)
