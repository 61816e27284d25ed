"""Session tokens and challenges: round trips, tampering, expiry, other secrets (PROTOCOL.md 4, 5)."""

from __future__ import annotations

import time

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from app.anticheat.tokens import Challenge, SessionClaims, TokenSigner, new_action_id
from app.errors import ProtocolError

SECRET = "unit-test-secret-0123456789"
SESSION_SALT = "live-scoreboard.session.v1"


def make_signer(secret: str = SECRET, ttl: int = 3600) -> TokenSigner:
    return TokenSigner(secret, session_ttl_s=ttl)


def old_session_token(secret: str, claims: list, age_s: int) -> str:
    """A session token signed `age_s` seconds ago: only the test's own serializer is changed."""

    class OldTimestampSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - age_s

    class OldSerializer(URLSafeTimedSerializer):
        default_signer = OldTimestampSigner

    return OldSerializer(secret, salt=SESSION_SALT).dumps(claims)


def tamper(token: str) -> str:
    """Flip one character in the payload part of the token."""
    i = len(token) // 3
    replacement = "A" if token[i] != "A" else "B"
    return token[:i] + replacement + token[i + 1:]


def error_code(fn, *args) -> str:
    with pytest.raises(ProtocolError) as info:
        fn(*args)
    return info.value.code


CLAIMS = SessionClaims(player_id="p_1", name="Ann Lee", region="eu", guild="g-1")
CHALLENGE = Challenge(
    action_id="a1", player_id="p_1", action="complete_level", points=100, difficulty=12,
    min_ms=2000, issued_ms=1_795_428_000_000, expires_ms=1_795_428_600_000,
)


def test_session_round_trip() -> None:
    signer = make_signer()
    token = signer.session_token(CLAIMS)
    assert isinstance(token, str) and token
    assert signer.read_session(token) == CLAIMS


def test_session_round_trip_without_guild_and_with_unicode_name() -> None:
    signer = make_signer()
    claims = SessionClaims(player_id="x", name="Zoë 東京", region="apac", guild=None)
    assert signer.read_session(signer.session_token(claims)) == claims


def test_session_accepted_by_another_signer_with_the_same_secret() -> None:
    token = make_signer().session_token(CLAIMS)
    assert make_signer().read_session(token) == CLAIMS


def test_tampered_session_token_is_invalid() -> None:
    signer = make_signer()
    token = signer.session_token(CLAIMS)
    assert error_code(signer.read_session, tamper(token)) == "token_invalid"
    assert error_code(signer.read_session, token[:-2]) == "token_invalid"
    assert error_code(signer.read_session, token + "x") == "token_invalid"


@pytest.mark.parametrize("token", ["", None, 42, ["a"], {"t": 1}, "x" * 2049, "not-a-token", "a.b.c"])
def test_missing_or_malformed_session_token_is_invalid(token: object) -> None:
    assert error_code(make_signer().read_session, token) == "token_invalid"


def test_session_token_from_another_secret_is_invalid() -> None:
    token = make_signer("another-secret-9876543210").session_token(CLAIMS)
    assert error_code(make_signer().read_session, token) == "token_invalid"


def test_expired_session_token() -> None:
    signer = make_signer(ttl=60)
    claims = [CLAIMS.player_id, CLAIMS.name, CLAIMS.region, CLAIMS.guild]
    assert error_code(signer.read_session, old_session_token(SECRET, claims, age_s=120)) == "token_expired"
    # Inside the TTL the same construction is accepted: the expiry comes from the age alone.
    assert signer.read_session(old_session_token(SECRET, claims, age_s=30)) == CLAIMS


def test_expired_token_from_another_secret_is_invalid_not_expired() -> None:
    claims = [CLAIMS.player_id, CLAIMS.name, CLAIMS.region, CLAIMS.guild]
    token = old_session_token("another-secret-9876543210", claims, age_s=7200)
    assert error_code(make_signer(ttl=60).read_session, token) == "token_invalid"


def test_challenge_round_trip() -> None:
    signer = make_signer()
    token = signer.challenge_token(CHALLENGE)
    assert isinstance(token, str) and token
    assert signer.read_challenge(token) == CHALLENGE
    assert make_signer().read_challenge(token) == CHALLENGE


def test_challenge_does_not_expire_by_signature_age() -> None:
    """Challenge expiry is the caller's business (after duplicate detection), not the signer's."""
    signer = make_signer(ttl=60)
    token = signer.challenge_token(CHALLENGE)  # expires_ms is long in the past relative to the TTL
    assert signer.read_challenge(token).expires_ms == CHALLENGE.expires_ms


def test_tampered_challenge_is_invalid() -> None:
    signer = make_signer()
    token = signer.challenge_token(CHALLENGE)
    assert error_code(signer.read_challenge, tamper(token)) == "token_invalid"
    assert error_code(signer.read_challenge, "garbage") == "token_invalid"
    assert error_code(signer.read_challenge, "") == "token_invalid"


def test_challenge_from_another_secret_is_invalid() -> None:
    token = make_signer("another-secret-9876543210").challenge_token(CHALLENGE)
    assert error_code(make_signer().read_challenge, token) == "token_invalid"


def test_session_and_challenge_tokens_are_not_interchangeable() -> None:
    signer = make_signer()
    assert error_code(signer.read_challenge, signer.session_token(CLAIMS)) == "token_invalid"
    assert error_code(signer.read_session, signer.challenge_token(CHALLENGE)) == "token_invalid"


def test_new_action_ids_are_unique_and_url_safe() -> None:
    ids = {new_action_id() for _ in range(200)}
    assert len(ids) == 200
    for action_id in ids:
        assert action_id and all(c.isalnum() or c in "-_" for c in action_id)
