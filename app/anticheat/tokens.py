"""Session tokens and action challenges, signed with SECRET_KEY by itsdangerous.

Both are stateless, so a token minted by one instance is accepted by every other that
shares the key. Challenge times are the server's own clock, signed into the token.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from app.errors import ProtocolError


@dataclass(frozen=True)
class SessionClaims:
    player_id: str
    name: str
    region: str
    guild: str | None


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


class TokenSigner:
    def __init__(self, secret_key: str, session_ttl_s: int) -> None:
        self._sessions = URLSafeTimedSerializer(secret_key, salt="live-scoreboard.session.v1")
        self._challenges = URLSafeTimedSerializer(secret_key, salt="live-scoreboard.challenge.v1")
        self.session_ttl_s = session_ttl_s

    def session_token(self, claims: SessionClaims) -> str:
        return self._sessions.dumps([claims.player_id, claims.name, claims.region, claims.guild])

    def read_session(self, token: object) -> SessionClaims:
        if not isinstance(token, str) or not token or len(token) > 2048:
            raise ProtocolError("token_invalid", "session token missing or malformed")
        try:
            raw = self._sessions.loads(token, max_age=self.session_ttl_s)
        except SignatureExpired:
            raise ProtocolError("token_expired", "session token expired; create a new session") from None
        except (BadSignature, ValueError):
            raise ProtocolError("token_invalid", "session token is not valid") from None
        try:
            player_id, name, region, guild = raw
        except (TypeError, ValueError):
            raise ProtocolError("token_invalid", "session token is not valid") from None
        return SessionClaims(player_id, name, region, guild)

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
