"""Session tokens and challenges: round trips, tampering, expiry, other secrets, key rotation
(PROTOCOL.md 2, 4, 5)."""

from __future__ import annotations

import time

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from app.anticheat.tokens import Challenge, SessionClaims, TokenSigner, new_action_id
from app.clock import now_ms
from app.errors import ProtocolError

SECRET = "unit-test-secret-0123456789"
SESSION_SALT = "live-scoreboard.session.v1"


def make_signer(secret: str = SECRET, ttl: int = 3600, clock=now_ms) -> TokenSigner:
    return TokenSigner((secret,), session_ttl_s=ttl, clock=clock)


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


CLAIMS = SessionClaims(player_id="p_1", name="Ann Lee", region="eu", guild="g-1", issued_ms=now_ms())
V1_CLAIMS = [CLAIMS.player_id, CLAIMS.name, CLAIMS.region, CLAIMS.guild]


def same_player(claims: SessionClaims, other: SessionClaims) -> bool:
    return (claims.player_id, claims.name, claims.region, claims.guild) == (
        other.player_id, other.name, other.region, other.guild)
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
    claims = SessionClaims(player_id="x", name="Zoë 東京", region="apac", guild=None, issued_ms=now_ms())
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


def test_expired_v1_session_token() -> None:
    """v1 tokens (four fields) still verify; their issue time is itsdangerous' own timestamp."""
    signer = make_signer(ttl=60)
    assert error_code(signer.read_session, old_session_token(SECRET, V1_CLAIMS, age_s=120)) == "token_expired"
    # Inside the TTL the same construction is accepted: the expiry comes from the age alone.
    read = signer.read_session(old_session_token(SECRET, V1_CLAIMS, age_s=30))
    assert same_player(read, CLAIMS)
    assert abs(read.issued_ms - (now_ms() - 30_000)) < 2_000


def test_expired_token_from_another_secret_is_invalid_not_expired() -> None:
    token = old_session_token("another-secret-9876543210", V1_CLAIMS, age_s=7200)
    assert error_code(make_signer(ttl=60).read_session, token) == "token_invalid"


def test_session_token_carries_its_issue_time_in_ms() -> None:
    claims = SessionClaims("p_2", "Bo", "na", None, issued_ms=1_795_428_000_123)
    clock = [claims.issued_ms + 59_999]
    signer = make_signer(ttl=60, clock=lambda: clock[0])
    token = signer.session_token(claims)
    assert signer.read_session(token) == claims
    assert signer.expires_ms(claims) == claims.issued_ms + 60_000
    clock[0] += 1  # exactly SESSION_TTL_S after the issue
    assert error_code(signer.read_session, token) == "token_expired"
    assert error_code(signer.refuse_if_expired, claims) == "token_expired"


@pytest.mark.parametrize("payload", [
    ["p", "n", "eu", None, "1795428000123"], ["p", "n", "eu", None, True], ["p", "n", "eu", None, 1.5],
    ["p", "n", "eu"], ["p", "n", "eu", None, 1, 2], {"p": 1}, "p",
])
def test_signed_but_malformed_session_payload_is_invalid(payload: object) -> None:
    token = URLSafeTimedSerializer(SECRET, salt=SESSION_SALT).dumps(payload)
    assert error_code(make_signer().read_session, token) == "token_invalid"


# Key rotation (PROTOCOL.md 2): SECRET_KEY="B,A" signs with B and verifies with both.

KEY_A = "rotation-key-A-0123456789"
KEY_B = "rotation-key-B-0123456789"


def test_token_signed_under_the_old_key_verifies_after_rotation() -> None:
    old = TokenSigner((KEY_A,), session_ttl_s=3600)
    rotated = TokenSigner((KEY_B, KEY_A), session_ttl_s=3600)
    assert rotated.read_session(old.session_token(CLAIMS)) == CLAIMS
    assert rotated.read_challenge(old.challenge_token(CHALLENGE)) == CHALLENGE
    # A v1 token of the old key too.
    v1 = old_session_token(KEY_A, V1_CLAIMS, age_s=10)
    assert same_player(rotated.read_session(v1), CLAIMS)


def test_new_tokens_are_signed_with_the_first_key() -> None:
    rotated = TokenSigner((KEY_B, KEY_A), session_ttl_s=3600)
    only_b = TokenSigner((KEY_B,), session_ttl_s=3600)
    only_a = TokenSigner((KEY_A,), session_ttl_s=3600)
    token, challenge = rotated.session_token(CLAIMS), rotated.challenge_token(CHALLENGE)
    assert only_b.read_session(token) == CLAIMS
    assert only_b.read_challenge(challenge) == CHALLENGE
    assert error_code(only_a.read_session, token) == "token_invalid"
    assert error_code(only_a.read_challenge, challenge) == "token_invalid"


def test_old_key_dropped_refuses_its_tokens() -> None:
    old = TokenSigner((KEY_A,), session_ttl_s=3600)
    only_b = TokenSigner((KEY_B,), session_ttl_s=3600)
    assert error_code(only_b.read_session, old.session_token(CLAIMS)) == "token_invalid"
    assert error_code(only_b.read_challenge, old.challenge_token(CHALLENGE)) == "token_invalid"


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
