"""MongoDB `tournaments` and `tournament_entrants`: everything a rebuild of a tournament needs
besides the entrants' scores (kept in their player documents, `tournaments.<id>`).

Seats. A join first inserts the player's entrant document, `pending`, unique per
(tournament, player), so that of the player's racing joins (two tabs, two instances) one
holds it and the others wait for its outcome. The holder takes a seat with one conditional
`$inc` on the tournament (`players` below `max_players`, at the revision it read), then
marks its entrant `in`; without a seat it deletes its entrant. However many joins race on
however many instances, at most `max_players` seats are taken, one per player. A pending
entrant whose join died is taken over by the player's next join after a while; if that one
had taken its seat, the seat stays taken by nobody: the tournament fills one short, never
one over. Only entrants `in` count toward a tournament.

Awards. `claim_award` hands the end of a tournament to one finisher at a time (a claim
that lapses if its holder dies), and `mark_awarded` closes it exactly once.
"""

from __future__ import annotations

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from app.tournaments.model import Tournament

PENDING, IN = "pending", "in"  # an entrant's states: joining (no seat yet, or not yet marked), entered


class TournamentStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self.tournaments = db["tournaments"]
        self.entrants = db["tournament_entrants"]

    async def ensure_indexes(self) -> None:
        await self.entrants.create_index([("tournament_id", ASCENDING), ("player_id", ASCENDING)], unique=True)
        # The credit path: which of these tournaments has this player entered.
        await self.entrants.create_index([("player_id", ASCENDING)])
        await self.tournaments.create_index([("end_ms", ASCENDING)])

    async def get(self, tournament_id: str) -> Tournament | None:
        doc = await self.tournaments.find_one({"_id": tournament_id})
        return Tournament.from_doc(doc) if doc else None

    async def ending_after(self, ms: int) -> list[Tournament]:
        """Every tournament that ends after `ms`, by start (then id)."""
        cursor = self.tournaments.find({"end_ms": {"$gt": ms}}).sort([("start_ms", ASCENDING), ("_id", ASCENDING)])
        return [Tournament.from_doc(doc) async for doc in cursor]

    async def create(self, t: Tournament, now_ms: int) -> bool:
        """False when the id exists already."""
        doc = {"_id": t.tournament_id, **_fields(t), "players": 0, "rev": 0, "created_ms": now_ms,
               "updated_ms": now_ms}
        try:
            await self.tournaments.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def change(self, t: Tournament, now_ms: int) -> Tournament | None:
        """The tournament with `t`'s fields, if it has not started at `now_ms` and a new
        `max_players` still holds those who joined; else None (read it again to tell why)."""
        flt: dict = {"_id": t.tournament_id, "start_ms": {"$gt": now_ms}}
        if t.max_players is not None:
            flt["players"] = {"$lte": t.max_players}
        doc = await self.tournaments.find_one_and_update(
            flt, {"$set": {**_fields(t), "updated_ms": now_ms}, "$inc": {"rev": 1}},
            return_document=ReturnDocument.AFTER,
        )
        return Tournament.from_doc(doc) if doc else None

    async def take_seat(self, t: Tournament, now_ms: int) -> Tournament | None:
        """One more entrant counted, if the tournament is still as read (`rev`), has not
        ended, and has a seat left; the tournament after it, or None."""
        flt: dict = {"_id": t.tournament_id, "rev": t.rev, "end_ms": {"$gt": now_ms}}
        if t.max_players is not None:
            flt["players"] = {"$lt": t.max_players}
        doc = await self.tournaments.find_one_and_update(flt, {"$inc": {"players": 1}},
                                                         return_document=ReturnDocument.AFTER)
        return Tournament.from_doc(doc) if doc else None

    async def add_entrant(self, tournament_id: str, player_id: str, region: str, now_ms: int, nonce: str) -> bool:
        """A pending entrant held by `nonce`; False when the player has one already (in, or pending)."""
        try:
            await self.entrants.insert_one({"tournament_id": tournament_id, "player_id": player_id, "region": region,
                                            "state": PENDING, "nonce": nonce, "at_ms": now_ms})
        except DuplicateKeyError:
            return False
        return True

    async def entrant(self, tournament_id: str, player_id: str) -> dict | None:
        return await self.entrants.find_one({"tournament_id": tournament_id, "player_id": player_id})

    async def take_over(self, tournament_id: str, player_id: str, old_nonce: str, nonce: str, now_ms: int) -> bool:
        """Hold a pending entrant whose join died (still held by `old_nonce`)."""
        result = await self.entrants.update_one(
            {"tournament_id": tournament_id, "player_id": player_id, "state": PENDING, "nonce": old_nonce},
            {"$set": {"nonce": nonce, "at_ms": now_ms}})
        return result.modified_count == 1

    async def confirm_entrant(self, tournament_id: str, player_id: str, nonce: str, now_ms: int) -> None:
        await self.entrants.update_one({"tournament_id": tournament_id, "player_id": player_id, "nonce": nonce},
                                       {"$set": {"state": IN, "joined_ms": now_ms}, "$unset": {"nonce": ""}})

    async def drop_entrant(self, tournament_id: str, player_id: str, nonce: str) -> None:
        await self.entrants.delete_one({"tournament_id": tournament_id, "player_id": player_id, "nonce": nonce,
                                        "state": PENDING})

    async def entered(self, player_id: str, tournament_ids: list[str]) -> list[str]:
        """Those of `tournament_ids` the player has entered, in the order given."""
        cursor = self.entrants.find({"player_id": player_id, "tournament_id": {"$in": tournament_ids}, "state": IN},
                                    projection={"tournament_id": 1, "_id": 0})
        found = {doc["tournament_id"] async for doc in cursor}
        return [tid for tid in tournament_ids if tid in found]

    async def entries_of(self, player_id: str) -> list[dict]:
        """The player's entrant documents, oldest first (an export)."""
        cursor = self.entrants.find({"player_id": player_id}, projection={"_id": 0, "nonce": 0})
        return await cursor.sort("at_ms", ASCENDING).to_list()

    async def forget_player(self, player_id: str) -> None:
        """Erasure: the player's entries go, and with them the seats they held (a tournament
        shows the players it has)."""
        async for doc in self.entrants.find({"player_id": player_id, "state": IN}, projection={"tournament_id": 1}):
            deleted = await self.entrants.delete_one({"_id": doc["_id"], "state": IN})
            if deleted.deleted_count == 1:
                await self.tournaments.update_one({"_id": doc["tournament_id"], "players": {"$gt": 0}},
                                                  {"$inc": {"players": -1}})
        await self.entrants.delete_many({"player_id": player_id})

    async def unawarded_ended_by(self, ms: int) -> list[Tournament]:
        cursor = self.tournaments.find({"end_ms": {"$lte": ms}, "awarded": {"$ne": True}})
        return [Tournament.from_doc(doc) async for doc in cursor.sort("end_ms", ASCENDING)]

    async def claim_award(self, tournament_id: str, now_ms: int, hold_ms: int) -> bool:
        """True when this caller may award the tournament now: it has ended, is not awarded,
        and nobody else holds an unexpired claim (a finisher that died loses it after `hold_ms`)."""
        result = await self.tournaments.update_one(
            {"_id": tournament_id, "end_ms": {"$lte": now_ms}, "awarded": {"$ne": True},
             "$or": [{"awarding_until": {"$exists": False}}, {"awarding_until": {"$lt": now_ms}}]},
            {"$set": {"awarding_until": now_ms + hold_ms}},
        )
        return result.modified_count == 1

    async def mark_awarded(self, tournament_id: str, winners: list[str], now_ms: int) -> bool:
        """True for exactly one caller, ever."""
        result = await self.tournaments.update_one(
            {"_id": tournament_id, "awarded": {"$ne": True}},
            {"$set": {"awarded": True, "winners": winners, "awarded_ms": now_ms}},
        )
        return result.modified_count == 1


def _fields(t: Tournament) -> dict:
    """What a PUT sets; the counters (`players`, `rev`) and the award are the store's own."""
    return {
        "title": t.title,
        "start_ms": t.start_ms,
        "end_ms": t.end_ms,
        "actions": list(t.actions) if t.actions is not None else None,
        "regions": list(t.regions) if t.regions is not None else None,
        "max_players": t.max_players,
    }
