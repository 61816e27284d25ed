"""Sessions and profiles. A session creates or changes the player in MongoDB, then signs a token.

Returning guests (PROTOCOL.md 3, v1.1): the guest session that creates a player gets its
`guest_key`; a later guest session for that player must present it, or gets `unauthorized`
with the player left exactly as it was. A player minted with the API key has no guest key.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable

from redis.exceptions import RedisError

from app.anticheat.suspensions import Suspensions
from app.anticheat.tokens import SessionClaims, TokenSigner
from app.clock import iso, now_ms
from app.errors import ProtocolError, outage_as_unavailable
from app.leaderboard.boards import BoardStore, Standing
from app.leaderboard.periods import ALL, Totals
from app.leaderboard.queue import DeltaQueue
from app.players.revocations import Revocations
from app.players.store import PlayerStore
from app.scores.achievements import AchievementBook
from app.scores.repository import ScoreRepository

log = logging.getLogger(__name__)

# A profile change lost to another session's change is read again and retried this often.
CHANGE_TRIES = 5


def public_player(doc: dict) -> dict:
    return {"player_id": doc["_id"], "name": doc["name"], "region": doc["region"], "guild": doc.get("guild")}


def _key_hash(guest_key: str) -> str:
    # surrogatepass: a JSON string may hold a lone surrogate; it just hashes to a wrong key.
    return hashlib.sha256(guest_key.encode("utf-8", "surrogatepass")).hexdigest()


def _key_matches(doc: dict, guest_key: str | None) -> bool:
    stored = doc.get("guest_key_sha256")
    if not stored or guest_key is None:
        return False
    return hmac.compare_digest(stored, _key_hash(guest_key))


class PlayerService:
    def __init__(
        self,
        *,
        store: PlayerStore,
        repo: ScoreRepository,
        boards: BoardStore,
        queue: DeltaQueue,
        signer: TokenSigner,
        book: AchievementBook,
        suspensions: Suspensions,
        revocations: Revocations,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self._store = store
        self._repo = repo
        self._suspensions = suspensions
        self._boards = boards
        self._queue = queue
        self._signer = signer
        self._book = book
        self._revocations = revocations
        self._clock = clock

    async def create_session(self, player_id: str, name: str, region: str, guild: str | None, *,
                             guest: bool, guest_key: str | None = None) -> dict:
        """`guest`: no API key was sent, so an existing player needs its `guest_key`."""
        now = self._clock()
        with outage_as_unavailable("the score store"):
            doc, minted_key = await self._admit(player_id, name, region, guild, guest, guest_key, now)
        try:
            await self._boards.set_name(player_id, doc["name"])
        except (RedisError, OSError):
            log.warning("could not refresh the board name", extra={"player_id": player_id})
        player = public_player(doc)
        claims = SessionClaims(player_id, player["name"], player["region"], player["guild"], now)
        session = {
            "token": self._signer.session_token(claims),
            "player": player,
            "expires_in": self._signer.session_ttl_s,
        }
        if minted_key is not None:
            session["guest_key"] = minted_key
        return session

    async def _admit(self, player_id: str, name: str, region: str, guild: str | None, guest: bool,
                     guest_key: str | None, now: int) -> tuple[dict, str | None]:
        """The player document after this session (created, changed or as it was), and the
        guest key when this session created a guest player."""
        for _ in range(CHANGE_TRIES):
            doc = await self._store.get(player_id)
            if doc is None:
                minted = secrets.token_urlsafe(32) if guest else None
                created = await self._store.create(player_id, name, region, guild, now,
                                                   _key_hash(minted) if minted else None)
                if created is not None:
                    log.info("player created", extra={"player_id": player_id})
                    return created, minted
                continue  # another session created it first: this one is a returning player
            if guest and not _key_matches(doc, guest_key):
                log.info("guest session refused: no or wrong guest key", extra={"player_id": player_id,
                                                                                 "code": "unauthorized"})
                raise ProtocolError("unauthorized", "this player id is taken: send its guest_key")
            if (doc["name"], doc["region"], doc.get("guild")) == (name, region, guild):
                return doc, None
            if not await self._store.change(doc, name, region, guild):
                continue  # changed meanwhile by another session: decide again on what it is now
            after = await self._store.get(player_id)
            if after is None:
                continue  # erased meanwhile
            if (region, guild) != (doc["region"], doc.get("guild")):
                await self._moved(after, now)
            return after, None
        raise ProtocolError("unavailable", "the player is being changed by other sessions; retry")

    async def _moved(self, doc: dict, now: int) -> None:
        """A new region or guild: the standing, read after the move, goes to the flusher at
        once; its higher `moves` takes the player's rows off the old boards (every period)."""
        log.info("player moved", extra={"player_id": doc["_id"]})
        if int(doc.get("actions", 0)) > 0:
            await self._queue.push(Standing.from_player(doc, now, self._boards.periods))

    def check_session(self, claims: SessionClaims) -> None:
        """On each action: token_expired past SESSION_TTL_S, token_invalid once revoked (as
        this instance knows it: no store round trip)."""
        self._signer.refuse_if_expired(claims)
        if self._revocations.revoked(claims):
            raise ProtocolError("token_invalid", "this session was revoked; create a new session")

    async def check_connect(self, claims: SessionClaims) -> None:
        """On connect: token_invalid when the session was revoked (Redis, else MongoDB)."""
        await self._revocations.refuse_if_revoked(claims)

    async def revoke_sessions(self, player_id: str) -> dict:
        """Every session of the player issued before now is refused by every instance, and
        its open connections are closed within a poll."""
        with outage_as_unavailable("the score store"):
            at_ms = await self._revocations.revoke(player_id)
        log.info("sessions revoked", extra={"player_id": player_id})
        return {"player_id": player_id, "revoked_before": iso(at_ms)}

    async def set_suspended(self, player_id: str, suspended: bool, hidden: bool = False) -> dict:
        """An operator's decision: MongoDB first (the truth), then the Redis marks.

        `suspended`: the Redis set the hot path reads; the write refuses a suspended player on
        its own (the totals filter), so the Redis check may fail open. `hidden`: the player is
        marked, then its standing (read from MongoDB) is applied at once, which takes it off
        every current board (or puts it back), and queued, so that the flusher tells its rooms.
        A failure past MongoDB is `unavailable`: the same call again finishes it. Nothing here
        credits or takes a point: a standing only ever replaces an older version of itself."""
        with outage_as_unavailable("the score store"):
            doc = await self._store.set_moderation(player_id, suspended, hidden)
        if doc is None:
            raise ProtocolError("not_found", f"no player {player_id!r}")
        with outage_as_unavailable("the leaderboard store"):
            await self._suspensions.mark(player_id, suspended)
            await self._boards.set_hidden(player_id, hidden)
            # Its tournament boards too (0: their keys keep their expiry).
            standing = Standing.from_player(doc, self._clock(), self._boards.periods,
                                            dict.fromkeys(doc.get("tournaments") or {}, 0))
            await self._boards.apply(standing)
            await self._queue.push(standing)  # kept and sent later if Redis just refused it
        log.info("suspension set to %s, hidden %s", suspended, hidden, extra={"player_id": player_id})
        return {"player_id": player_id, "suspended": suspended, "hidden": hidden}

    async def profile(self, player_id: str) -> dict:
        now = now_ms()
        with outage_as_unavailable("the score store"):
            doc = await self._repo.get_player(player_id)
            if doc is None:
                raise ProtocolError("not_found", f"no player {player_id!r}")
            unlocked = await self._repo.player_achievements(player_id)
        ranks: dict[str, int | None] = {"global": None, "region": None, "guild": None}
        with outage_as_unavailable("the leaderboard store"):
            ranks["global"] = await self._boards.rank("global", ALL, player_id, now)
            ranks["region"] = await self._boards.rank(f"region:{doc['region']}", ALL, player_id, now)
            if doc.get("guild"):
                ranks["guild"] = await self._boards.rank(f"guild:{doc['guild']}", ALL, player_id, now)
        achievements = self._book.listed(unlocked)
        return {
            "player": public_player(doc),
            "score": Totals.of(doc, self._boards.periods, now).score(),
            "ranks": ranks,
            "achievements": achievements,
        }
