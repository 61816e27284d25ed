"""Session tokens and action challenges, signed with SECRET_KEY by itsdangerous.

Both are stateless, so a token minted by one instance is accepted by every other that
shares the key. Challenge times are the server's own clock, signed into the token.

A session token (v1.1) signs `[player_id, name, region, guild, issued_ms]`: the issue time
in ms is what expiry and revocation ("every token issued before T") compare against. The
4-field tokens of v1 still verify, their issue time read from itsdangerous' own timestamp
(whole seconds), until they expire.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

from app.clock import now_ms
from app.errors import ProtocolError


@dataclass(frozen=True)
class SessionClaims:
    player_id: str
    name: str
    region: str
    guild: str | None
    issued_ms: int


@dataclass(frozen=True)
class Challenge:
    action_id: str
    player_id: str
    action: str
    points: int
    difficulty: int
    min_ms: int
    issued_ms: int
    expires_ms: int


def _invalid() -> ProtocolError:
    return ProtocolError("token_invalid", "session token is not valid")


class TokenSigner:
    def __init__(self, secret_keys: tuple[str, ...], session_ttl_s: int,
                 clock: Callable[[], int] = now_ms) -> None:
        """`secret_keys`: the signing key first, then older keys that still verify (rotation).
        `clock` (ms) decides when a session has expired."""
        # itsdangerous signs with the last key of a list and verifies with every one.
        keys = list(reversed(secret_keys))
        self._sessions = URLSafeTimedSerializer(keys, salt="live-scoreboard.session.v1")
        self._challenges = URLSafeTimedSerializer(keys, salt="live-scoreboard.challenge.v1")
        self.session_ttl_s = session_ttl_s
        self._clock = clock

    def session_token(self, claims: SessionClaims) -> str:
        c = claims
        return self._sessions.dumps([c.player_id, c.name, c.region, c.guild, c.issued_ms])

    def read_session(self, token: object) -> SessionClaims:
        """The claims of a token signed with one of the keys and not yet expired."""
        if not isinstance(token, str) or not token or len(token) > 2048:
            raise ProtocolError("token_invalid", "session token missing or malformed")
        try:
            raw, signed_at = self._sessions.loads(token, return_timestamp=True)
        except (BadSignature, ValueError):
            raise _invalid() from None
        if not isinstance(raw, list):
            raise _invalid()
        if len(raw) == 4:  # v1: no issue time of its own
            raw = [*raw, int(signed_at.timestamp()) * 1000]
        try:
            player_id, name, region, guild, issued_ms = raw
        except ValueError:
            raise _invalid() from None
        if isinstance(issued_ms, bool) or not isinstance(issued_ms, int):
            raise _invalid()
        claims = SessionClaims(player_id, name, region, guild, issued_ms)
        self.refuse_if_expired(claims)
        return claims

    def expires_ms(self, claims: SessionClaims) -> int:
        return claims.issued_ms + self.session_ttl_s * 1000

    def refuse_if_expired(self, claims: SessionClaims) -> None:
        """token_expired once SESSION_TTL_S has passed since the session was issued."""
        if self._clock() >= self.expires_ms(claims):
            raise ProtocolError("token_expired", "session token expired; create a new session")

    def challenge_token(self, challenge: Challenge) -> str:
        c = challenge
        return self._challenges.dumps(
            [c.action_id, c.player_id, c.action, c.points, c.difficulty, c.min_ms, c.issued_ms, c.expires_ms]
        )

    def read_challenge(self, token: str) -> Challenge:
        """Verify the signature only; expiry is checked by the caller, after duplicates."""
        try:
            raw = self._challenges.loads(token)
            return Challenge(*raw)
        except (BadSignature, TypeError, ValueError):
            raise ProtocolError("token_invalid", "challenge token is not valid") from None


def new_action_id() -> str:
    return secrets.token_urlsafe(16)
