"""Start and complete actions: every anti-cheat check, then the credit.

Check order follows PROTOCOL.md section 5: signature, owner, expiry, minimum play time,
proof of work, then the play clock at the write. A challenge that was already credited
answers its stored ack even after it expired, so a client that lost an ack can always
retry. Every attempt that passed the signature check goes to the audit trail, credited or
refused; a suspect's challenges ask for more proof of work (its difficulty bonus).
"""

from __future__ import annotations

import asyncio
import logging

from app.actions.catalogue import Catalogue
from app.anticheat.limits import RateLimiter
from app.anticheat.proof import proof_ok
from app.anticheat.tokens import Challenge, SessionClaims, TokenSigner, new_action_id
from app.clock import iso, now_ms
from app.errors import ProtocolError, outage_as_unavailable
from app.leaderboard.boards import Standing
from app.leaderboard.periods import PeriodTable, Totals
from app.leaderboard.updates import BoardUpdates
from app.operators.audit import AuditEntry, AuditTrail
from app.scores.achievements import Achievement, AchievementBook
from app.scores.batching import BatchedCredits
from app.scores.repository import CreditRecord, ScoreRepository
from app.tournaments.service import TournamentService, ack_scores

log = logging.getLogger(__name__)


class ActionService:
    def __init__(
        self,
        *,
        catalogue: Catalogue,
        signer: TokenSigner,
        limiter: RateLimiter,
        repo: ScoreRepository,
        book: AchievementBook,
        updates: BoardUpdates,
        writes: BatchedCredits,
        audit: AuditTrail,
        tournaments: TournamentService | None = None,
    ) -> None:
        """`limiter` also answers the suspension check and the difficulty bonus (its admission)."""
        self._audit = audit
        self._tournaments = tournaments
        self._writes = writes
        self._in_flight: dict[str, asyncio.Future[dict]] = {}
        self._catalogue = catalogue
        self._signer = signer
        self._limiter = limiter
        self._repo = repo
        self._book = book
        self._updates = updates

    async def start(self, player: SessionClaims, action: str) -> dict:
        rule = self._catalogue.get(action)
        if rule is None:
            raise ProtocolError("unknown_action", f"no action named {action!r} in the catalogue")
        now = now_ms()
        action_id = new_action_id()
        # One round trip; keeps answering while Redis is away (fail open, limits counted locally).
        admitted = await self._limiter.admit(player.player_id, f"start:{player.player_id}:{action}",
                                             rule.per_minute, 60_000, now, action_id)
        if admitted.suspended:
            raise _refusal("suspended")
        if admitted.wait_ms:
            log.info("action refused: rate_limited", extra={"player_id": player.player_id, "code": "rate_limited"})
            raise ProtocolError("rate_limited", f"at most {rule.per_minute} {action} per minute",
                                retry_after_ms=admitted.wait_ms)
        # Up to 8 more bits for a suspect (section 5): it pays for every credit, a person never notices.
        bonus = max(0, min(MAX_BONUS_BITS, admitted.bonus))
        difficulty = min(MAX_DIFFICULTY, rule.difficulty + bonus)
        challenge = Challenge(
            action_id=action_id,
            player_id=player.player_id,
            action=action,
            points=rule.points,
            difficulty=difficulty,
            min_ms=rule.min_ms,
            issued_ms=now,
            expires_ms=now + rule.ttl_s * 1000,
        )
        return {
            "action_id": action_id,
            "token": self._signer.challenge_token(challenge),
            "difficulty": difficulty,
            "min_ms": rule.min_ms,
            "expires_at": iso(challenge.expires_ms),
        }

    async def complete(self, player: SessionClaims, token: str, proof: str, client: str = "unknown") -> dict:
        """One log line per completion: credited, answered again, or refused with its code;
        and one audit entry for each that passed the signature check. `client`: the address."""
        ids: dict = {"player_id": player.player_id}
        try:
            challenge = self._signer.read_challenge(token)
        except ProtocolError as exc:
            log.info("action refused: %s", exc.code, extra={**ids, "code": exc.code})
            raise
        ids["action_id"] = challenge.action_id
        now = now_ms()
        try:
            reply = await self._complete(player, challenge, token, proof, now)
        except ProtocolError as exc:
            log.info("action refused: %s", exc.code, extra={**ids, "code": exc.code})
            self._record(player, challenge, now, client, exc.code, 0)
            raise
        what = "action answered again" if reply["duplicate"] else "action credited"
        log.info(what, extra={**ids, "points": reply["points"], "duplicate": reply["duplicate"]})
        self._record(player, challenge, now, client, "credited", reply["points"], duplicate=reply["duplicate"])
        return reply

    def _record(self, player: SessionClaims, challenge: Challenge, now: int, client: str, outcome: str,
                points: int, duplicate: bool = False) -> None:
        self._audit.record(AuditEntry(
            player_id=player.player_id, action_id=challenge.action_id, action=challenge.action, outcome=outcome,
            points=points, started_ms=challenge.issued_ms, completed_ms=now, min_ms=challenge.min_ms,
            difficulty=challenge.difficulty, client=client, duplicate=duplicate,
        ))

    async def _complete(self, player: SessionClaims, challenge: Challenge, token: str, proof: str, now: int) -> dict:
        """Every check that needs no store comes first, the proof of work included: a client
        that cannot show the work costs no store read (admission control)."""
        if challenge.player_id != player.player_id:
            raise ProtocolError("token_invalid", "this challenge belongs to another player")
        refusal = None
        if now >= challenge.expires_ms:
            refusal = ProtocolError("token_expired", "the challenge expired; start a new one")
        elif now - challenge.issued_ms < challenge.min_ms:
            wait = challenge.min_ms - (now - challenge.issued_ms)
            refusal = ProtocolError("too_fast", f"completed {wait} ms before the minimum play time",
                                    retry_after_ms=wait)
        proven = proof_ok(token, proof, challenge.difficulty)
        if refusal is not None:
            # An expired or early completion may still be the retry of one already credited;
            # only a valid proof can be (the credited attempt had one), so only then look.
            if proven:
                with outage_as_unavailable("the score store"):
                    stored = await self._repo.find_ack(challenge.action_id)
                if stored is not None:
                    return {**stored, "duplicate": True}
            raise refusal
        if not proven:
            raise ProtocolError("proof_invalid", f"proof does not give {challenge.difficulty} leading zero bits")
        # No Redis suspension check here: the totals update refuses a suspended player itself
        # (ScoreRepository._apply_filter), Redis up or down, so a check here would only cost a round trip.
        # Decided here, on the server's clock at the credit, and kept with the record. Never
        # raises (a tournament problem never costs the credit): it counts toward none then.
        boards = (await self._tournaments.credit_boards(player.player_id, player.region, challenge.action, now)
                  if self._tournaments is not None else [])
        rec = CreditRecord(challenge.action_id, player.player_id, challenge.action, challenge.points, now,
                           challenge.min_ms, challenge.issued_ms, tuple(boards))
        return await self._credit(rec)

    async def finish_pending(self, rec: CreditRecord) -> dict:
        """Finish a credit left half-done (the reconciler): the same path as a retry, so the
        totals, the boards, the achievements and the ack end as if it had never stopped."""
        return await self._credit(rec)

    async def _credit(self, rec: CreditRecord) -> dict:
        """Single flight: a second completion of a challenge this instance is crediting right
        now waits for the first and answers its ack as a duplicate."""
        running = self._in_flight.get(rec.action_id)
        if running is not None:
            return {**await asyncio.shield(running), "duplicate": True}
        future: asyncio.Future[dict] = asyncio.get_running_loop().create_future()
        self._in_flight[rec.action_id] = future
        try:
            reply = await self._credit_once(rec)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: nobody may be waiting
            raise
        else:
            future.set_result(reply)
            return reply
        finally:
            del self._in_flight[rec.action_id]

    async def _credit_once(self, rec: CreditRecord) -> dict:
        """Totals, board standing, achievements, ack: every step is idempotent, so whoever
        meets a half-done credit (this attempt, a retry, the reconciler) runs all of them."""
        with outage_as_unavailable("the score store"):
            outcome = await self._writes.credit(rec)
        if outcome.refused is not None:
            raise _refusal(outcome.refused, outcome.retry_after_ms)
        if outcome.ack is not None:
            return {**outcome.ack, "duplicate": True}
        assert outcome.after is not None
        boards = self._tournaments.board_expiry(rec.tournaments) if self._tournaments and rec.tournaments else {}
        standing = Standing.from_player(outcome.after, rec.at_ms, self._repo.periods, boards)
        unlocked: list[Achievement] = []  # earned by this action: listed in the ack
        announce: list[Achievement] = []  # unlocked by this call: pushed to the player
        with outage_as_unavailable("the score store"):
            for ach in self._book.crossed(outcome.before, outcome.after, rec.day):
                unlocked.append(ach)
                if await self._repo.unlock(rec.player_id, ach.id, rec.at_ms):
                    announce.append(ach)
        rank = await self._updates.publish(standing)
        if rank is not None:
            known = set(outcome.after.get("unlocked") or ())
            with outage_as_unavailable("the score store"):
                for ach in self._book.by_rank(rank):
                    if ach.id not in known and await self._repo.unlock(rec.player_id, ach.id, rec.at_ms):
                        unlocked.append(ach)
                        announce.append(ach)
        ack = _ack(rec, outcome.after, [a.id for a in unlocked], self._repo.periods)
        with outage_as_unavailable("the score store"):
            stored = await self._writes.finish(rec.action_id, ack)
        for ach in announce:
            await self._updates.announce_achievement(rec.player_id, {**ach.public(), "unlocked_at": iso(rec.at_ms)})
        return {**stored, "duplicate": outcome.duplicate}


_REFUSALS = {
    "token_invalid": "no such player: start a new session",
    "suspended": "this player is suspended by an operator",
    "too_fast": "too soon after this player's last credited completion of this action; "
                "the challenge stays valid: retry after retry_after_ms",
    "unavailable": "the score store did not apply this completion; retry later",
}
MAX_BONUS_BITS = 8
MAX_DIFFICULTY = 32


def _refusal(code: str, retry_after_ms: int | None = None) -> ProtocolError:
    return ProtocolError(code, _REFUSALS.get(code, code), retry_after_ms=retry_after_ms)


def _ack(rec: CreditRecord, doc: dict, achievements: list[str], periods: PeriodTable) -> dict:
    return {
        "action_id": rec.action_id,
        "points": rec.points,
        "score": Totals.of(doc, periods, rec.at_ms).score(),
        "achievements": achievements,
        # Only for a credit that counted toward a tournament (PROTOCOL.md 10).
        **({"tournaments": ack_scores(rec.tournaments, doc)} if rec.tournaments else {}),
    }
