"""The operators' seat (PROTOCOL.md 9): a player's audit trail, the suspects queue, suspension
and hiding, export, erasure, and the live figures.

Nothing here credits, takes or moves a point, except an erasure, which deletes the player
whole. Every call about a player is written to the operator log (app/operators/oplog.py),
refused ones too, with the operator's address (`by`).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from app.clock import iso, now_ms
from app.errors import ProtocolError, outage_as_unavailable
from app.leaderboard.lease import FlushLease
from app.leaderboard.queue import DeltaQueue
from app.operators.audit import AuditTrail
from app.operators.erasure import Eraser
from app.operators.oplog import OperatorLog
from app.operators.stats import LiveStats
from app.players.service import PlayerService, public_player
from app.players.store import PlayerStore
from app.rooms.names import ID_PATTERN
from app.scores.achievements import AchievementBook
from app.scores.repository import ScoreRepository
from app.tournaments.store import TournamentStore

try:  # the behaviour scoring's threshold, once that module is there
    from app.anticheat.scoring import THRESHOLD as SUSPECT_THRESHOLD
except ImportError:  # pragma: no cover - only before app/anticheat/scoring.py exists
    SUSPECT_THRESHOLD = 0.5

log = logging.getLogger(__name__)

T = TypeVar("T")
_ID = re.compile(rf"^{ID_PATTERN}\Z")
# A suspects cursor: the last entry's score (Python's float repr, exact) and player id.
_SUSPECT_CURSOR = re.compile(rf"^([0-9.e+-]{{1,32}})~({ID_PATTERN})\Z")

# Fields of a player document an export never shows: the SHA-256 of its guest key (a
# credential, of no use to the player, who holds the key itself) and the credit path's
# idempotency guards (`applied_ids`, older releases' `applied`: action ids mapped to batch
# nonces, internal bookkeeping that says nothing about the player the action log does not).
EXPORT_NEVER = frozenset({"guest_key_sha256", "applied_ids", "applied"})
# Fields an export shows in their own sections; whatever else a document holds goes under "other".
# (The period table's maps, days and weeks, are shown under "totals" too.)
_EXPORT_SHOWN = frozenset({"_id", "name", "region", "guild", "created_ms", "minted_by", "moves", "total", "actions",
                           "active_days", "last_ms", "clock", "unlocked", "revoked_before",
                           "suspended", "hidden", "suspicion", "tournaments"})

ROUTE_ACTIONS = "GET /api/v1/admin/players/{player_id}/actions"
ROUTE_SUSPENSION = "PUT /api/v1/players/{player_id}/suspension"
ROUTE_EXPORT = "GET /api/v1/admin/players/{player_id}/export"
ROUTE_ERASE = "DELETE /api/v1/admin/players/{player_id}"


def encode_suspect_cursor(score: float, player_id: str) -> str:
    return f"{score!r}~{player_id}"


def decode_suspect_cursor(cursor: str) -> tuple[float, str]:
    match = _SUSPECT_CURSOR.match(cursor)
    try:
        score = float(match.group(1)) if match else math.nan
    except ValueError:
        score = math.nan
    if match is None or not 0.0 <= score <= 1.0:
        raise ProtocolError("invalid_payload", "cursor is not one this server gave")
    return score, match.group(2)


def _iso_or_none(ms: Any) -> str | None:
    return iso(int(ms)) if isinstance(ms, (int, float)) and not isinstance(ms, bool) and ms > 0 else None


def _plain(value: Any) -> Any:
    """A stored value as JSON: datetimes as ISO strings, ObjectIds as text."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, ObjectId):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def public_suspicion(suspicion: dict | None) -> dict | None:
    if not suspicion:
        return None
    return {
        "score": float(suspicion.get("score") or 0.0),
        "signals": _plain(suspicion.get("signals") or {}),
        "difficulty_bonus": int(suspicion.get("difficulty_bonus") or 0),
        "since": _iso_or_none(suspicion.get("since")),
        "updated_at": _iso_or_none(suspicion.get("updated_ms")),
    }


class OperatorService:
    def __init__(self, *, db: AsyncDatabase, repo: ScoreRepository, players: PlayerService, store: PlayerStore,
                 audit: AuditTrail,
                 eraser: Eraser, oplog: OperatorLog, stats: LiveStats, lease: FlushLease, queue: DeltaQueue,
                 book: AchievementBook, clock: Callable[[], int] = now_ms,
                 tournaments: TournamentStore | None = None) -> None:
        self._players_coll = db["players"]
        self._tournaments = tournaments
        self._repo = repo
        self._players = players
        self._store = store
        self._audit = audit
        self._eraser = eraser
        self.oplog = oplog
        self.stats_source = stats
        self._lease = lease
        self._queue = queue
        self._book = book
        self._clock = clock

    async def ensure_indexes(self) -> None:
        # The suspects queue: most suspicious first, then by id (the cursor's order).
        await self._players_coll.create_index([("suspicion.score", DESCENDING), ("_id", ASCENDING)])
        await self.oplog.ensure_indexes()

    def start(self) -> None:
        self.stats_source.start()

    async def stop(self) -> None:
        await self.stats_source.stop()

    async def _logged(self, action: str, route: str, player_id: str, by: str, detail: dict | None,
                      run: Callable[[], Awaitable[T]]) -> T:
        """Run one operator call about a player and write it to the operator log, whatever its
        outcome (an id no player can have is logged cut to the longest one can)."""
        target = player_id[:64]
        try:
            result = await run()
        except ProtocolError as exc:
            await self.oplog.write(action=action, route=route, player_id=target, outcome=exc.code, client=by,
                                   detail=detail)
            raise
        await self.oplog.write(action=action, route=route, player_id=target, outcome="ok", client=by, detail=detail)
        return result

    async def _known(self, player_id: str) -> bool:
        """The player exists, or existed and was erased."""
        if not _ID.match(player_id):
            return False
        with outage_as_unavailable("the score store"):
            if await self._store.get(player_id) is not None:
                return True
            return await self._eraser.erased_ms(player_id) is not None

    async def actions(self, player_id: str, limit: int, cursor: str | None, *, by: str) -> dict:
        """The player's audit trail, newest first (an erased player's too: stripped)."""
        async def run() -> dict:
            if not await self._known(player_id):
                raise ProtocolError("not_found", f"no player {player_id!r}")
            with outage_as_unavailable("the score store"):
                return await self._audit.page(player_id, limit, cursor)

        return await self._logged("actions", ROUTE_ACTIONS, player_id, by, {"limit": limit, "cursor": cursor}, run)

    async def suspects(self, limit: int, cursor: str | None) -> dict:
        """Players whose suspicion reached the threshold, most suspicious first (then by id)."""
        query: dict = {"suspicion.score": {"$gte": SUSPECT_THRESHOLD}}
        if cursor is not None:
            score, pid = decode_suspect_cursor(cursor)
            query = {"$and": [query, {"$or": [{"suspicion.score": {"$lt": score}},
                                              {"suspicion.score": score, "_id": {"$gt": pid}}]}]}
        projection = {"name": 1, "suspicion": 1, "suspended": 1, "hidden": 1}
        with outage_as_unavailable("the score store"):
            found = self._players_coll.find(query, projection=projection)
            found = found.sort([("suspicion.score", DESCENDING), ("_id", ASCENDING)]).limit(limit + 1)
            docs = [doc async for doc in found]
        more = len(docs) > limit
        docs = docs[:limit]
        entries = []
        for doc in docs:
            suspicion = public_suspicion(doc.get("suspicion")) or {}
            entries.append({
                "player_id": doc["_id"], "name": doc.get("name"), "suspicion": suspicion.get("score", 0.0),
                "signals": suspicion.get("signals", {}), "difficulty_bonus": suspicion.get("difficulty_bonus", 0),
                "since": suspicion.get("since"),
                # Beside the protocol's fields: what an operator did already.
                "suspended": bool(doc.get("suspended")), "hidden": bool(doc.get("hidden")),
            })
        last = docs[-1] if docs else None
        next_cursor = encode_suspect_cursor(float(last["suspicion"]["score"]), last["_id"]) if more and last else None
        return {"entries": entries, "next_cursor": next_cursor}

    async def set_suspension(self, player_id: str, suspended: bool, hidden: bool, *, by: str) -> dict:
        async def run() -> dict:
            if not _ID.match(player_id):
                raise ProtocolError("not_found", f"no player {player_id!r}")
            return await self._players.set_suspended(player_id, suspended, hidden)

        detail = {"suspended": suspended, "hidden": hidden}
        return await self._logged("suspension", ROUTE_SUSPENSION, player_id, by, detail, run)

    async def export(self, player_id: str, *, by: str) -> dict:
        """Every datum kept about the player, as one JSON document (a data-subject request)."""
        async def run() -> dict:
            with outage_as_unavailable("the score store"):
                doc = await self._store.get(player_id) if _ID.match(player_id) else None
                if doc is None:
                    raise ProtocolError("not_found", f"no player {player_id!r}")
                return await self._export(doc)

        return await self._logged("export", ROUTE_EXPORT, player_id, by, None, run)

    async def _export(self, doc: dict) -> dict:
        player_id = doc["_id"]
        now = self._clock()
        achievements = self._book.listed(await self._repo.player_achievements(player_id))
        credits = [
            {"action_id": row["_id"], "action": row.get("action"), "points": int(row.get("points", 0)),
             "at": iso(int(row["at_ms"])), "state": row.get("state")}
            for row in await self._repo.player_credits(player_id)
        ]
        period_fields = {p.field for p in self._repo.periods}
        other = {k: _plain(v) for k, v in doc.items()
                 if k not in _EXPORT_SHOWN and k not in EXPORT_NEVER and k not in period_fields}
        return {
            "player_id": player_id,
            "exported_at": iso(now),
            "profile": {**public_player(doc), "created_at": _iso_or_none(doc.get("created_ms")),
                        "minted_by": doc.get("minted_by"), "moves": int(doc.get("moves", 0))},
            "totals": {
                "total": int(doc.get("total", 0)), "actions": int(doc.get("actions", 0)),
                # Points per period key, as the totals document keeps them: days, weeks.
                **{p.field: dict(doc.get(p.field) or {}) for p in self._repo.periods},
                "active_days": list(doc.get("active_days") or []),
                "last_credited_at": _iso_or_none(doc.get("last_ms")),
                # The play clock: the last credited completion of each action.
                "last_credited_by_action": {a: _iso_or_none(ms) for a, ms in (doc.get("clock") or {}).items()},
                # The tournaments entered (PROTOCOL.md 10), with the player's score in each.
                "tournaments": await self._tournament_entries(doc),
            },
            "achievements": achievements,
            "credits": credits,
            "audit_trail": await self._audit.all_of(player_id),
            "sessions": {"revoked_before": _iso_or_none(doc.get("revoked_before"))},
            "moderation": {"suspended": bool(doc.get("suspended")), "hidden": bool(doc.get("hidden"))},
            "suspicion": public_suspicion(doc.get("suspicion")),
            # Earlier operator calls about the player (this export's own entry follows it).
            "operator_log": await self.oplog.of(player_id),
            "other": other,
        }

    async def _tournament_entries(self, doc: dict) -> list[dict]:
        """The tournaments the player entered, with its score in each (PROTOCOL.md 10)."""
        scores = doc.get("tournaments") or {}
        entries = await self._tournaments.entries_of(doc["_id"]) if self._tournaments is not None else []
        return [{"tournament_id": e["tournament_id"], "state": e.get("state"), "region": e.get("region"),
                 "joined_at": _iso_or_none(e.get("joined_ms") or e.get("at_ms")),
                 "score": int(scores.get(e["tournament_id"], 0))} for e in entries]

    async def erase(self, player_id: str, *, by: str) -> dict:
        """Erase the player for good (app/operators/erasure.py): sessions revoked first (that
        needs the document), then off every board, then everything kept goes. A player erased
        already answers the same (idempotent): what a failure may have left is cleared again."""
        async def run() -> dict:
            if not _ID.match(player_id):
                raise ProtocolError("not_found", f"no player {player_id!r}")
            with outage_as_unavailable("the score store"):
                doc = await self._store.get(player_id)
                if doc is None:
                    if await self._eraser.erased_ms(player_id) is None:
                        raise ProtocolError("not_found", f"no player {player_id!r}")
                    await self._eraser.clear(player_id)
                    return {"player_id": player_id, "erased": True}
            await self._players.revoke_sessions(player_id)
            with outage_as_unavailable("the stores"):
                await self._eraser.erase(doc)
            return {"player_id": player_id, "erased": True}

        return await self._logged("erase", ROUTE_ERASE, player_id, by, None, run)

    async def stats(self) -> dict:
        """The live figures of every instance, summed (app/operators/stats.py)."""
        with outage_as_unavailable("the leaderboard store"):
            figures = await self.stats_source.gather()
            holder = await self._lease.current_holder()
            depth = await self._queue.depth()
        return {"at": iso(self._clock()), **figures, "lease_holder": holder, "queue_depth": depth}
