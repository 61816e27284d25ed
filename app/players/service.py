"""Sessions and profiles. A session upserts the player in MongoDB, then signs a token."""

from __future__ import annotations

import logging

from redis.exceptions import RedisError

from app.anticheat.suspensions import Suspensions
from app.anticheat.tokens import SessionClaims, TokenSigner
from app.clock import day_key, iso, now_ms, week_key
from app.errors import ProtocolError, outage_as_unavailable
from app.leaderboard.boards import BoardStore
from app.scores.achievements import AchievementBook
from app.scores.repository import ScoreRepository

log = logging.getLogger(__name__)


def public_player(doc: dict) -> dict:
    return {"player_id": doc["_id"], "name": doc["name"], "region": doc["region"], "guild": doc.get("guild")}


class PlayerService:
    def __init__(
        self,
        repo: ScoreRepository,
        boards: BoardStore,
        signer: TokenSigner,
        book: AchievementBook,
        suspensions: Suspensions,
    ) -> None:
        self._repo = repo
        self._suspensions = suspensions
        self._boards = boards
        self._signer = signer
        self._book = book

    async def create_session(self, player_id: str, name: str, region: str, guild: str | None) -> dict:
        with outage_as_unavailable("the score store"):
            doc = await self._repo.upsert_player(player_id, name, region, guild, now_ms())
        try:
            await self._boards.set_name(player_id, name)
        except (RedisError, OSError):
            log.warning("could not refresh the board name", extra={"player_id": player_id})
        claims = SessionClaims(player_id, name, region, guild)
        return {
            "token": self._signer.session_token(claims),
            "player": public_player(doc),
            "expires_in": self._signer.session_ttl_s,
        }

    async def set_suspended(self, player_id: str, suspended: bool) -> dict:
        """An operator's decision: MongoDB first (the truth), then the Redis set the hot path reads."""
        with outage_as_unavailable("the score store"):
            found = await self._repo.set_suspended(player_id, suspended)
        if not found:
            raise ProtocolError("not_found", f"no player {player_id!r}")
        with outage_as_unavailable("the leaderboard store"):
            await self._suspensions.mark(player_id, suspended)
        log.info("suspension set to %s", suspended, extra={"player_id": player_id})
        return {"player_id": player_id, "suspended": suspended}

    async def profile(self, player_id: str) -> dict:
        now = now_ms()
        with outage_as_unavailable("the score store"):
            doc = await self._repo.get_player(player_id)
            if doc is None:
                raise ProtocolError("not_found", f"no player {player_id!r}")
            unlocked = await self._repo.player_achievements(player_id)
        ranks: dict[str, int | None] = {"global": None, "region": None, "guild": None}
        with outage_as_unavailable("the leaderboard store"):
            ranks["global"] = await self._boards.rank("global", "all", player_id, now)
            ranks["region"] = await self._boards.rank(f"region:{doc['region']}", "all", player_id, now)
            if doc.get("guild"):
                ranks["guild"] = await self._boards.rank(f"guild:{doc['guild']}", "all", player_id, now)
        achievements = []
        for row in unlocked:
            ach = self._book.get(row["achievement"])
            name = ach.name if ach else row["achievement"]
            achievements.append({"id": row["achievement"], "name": name, "unlocked_at": iso(row["unlocked_ms"])})
        return {
            "player": public_player(doc),
            "score": {
                "total": int(doc.get("total", 0)),
                "daily": int((doc.get("days") or {}).get(day_key(now), 0)),
                "weekly": int((doc.get("weeks") or {}).get(week_key(now), 0)),
            },
            "ranks": ranks,
            "achievements": achievements,
        }
