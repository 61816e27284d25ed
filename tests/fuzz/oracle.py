"""What PROTOCOL.md lets the server answer to a given input.

Each rule returns the set of outcomes allowed: "ok" or error codes for socket acks, statuses for
HTTP. Where PROTOCOL.md is silent (which of two errors comes first, whether `null` counts as an
absent optional field, what "printable" means beyond ASCII, a limit it does not give), every
reading is allowed; where it speaks, exactly what it says is.
"""

from __future__ import annotations

import hashlib
import json
import time
import unicodedata
from dataclasses import dataclass, field

from tests.fuzz.strategies import CATALOGUE, Part
from tests.fuzz.wire import (
    KNOWN_EVENTS,
    PERIODS,
    REGIONS,
    BigLiteral,
    is_board,
    is_id,
    is_int,
    is_room,
    is_tournament_board,
)

VALID, INVALID, EITHER = "valid", "invalid", "either"


def combine(*verdicts: str) -> str:
    if INVALID in verdicts:
        return INVALID
    return EITHER if EITHER in verdicts else VALID


def with_invalid(verdict: str, outcomes: set[str], invalid: str = "invalid_payload") -> set[str]:
    if verdict == VALID:
        return set(outcomes)
    if verdict == INVALID:
        return {invalid}
    return set(outcomes) | {invalid}


def proof_ok(token: str, proof: str, difficulty: int) -> bool:
    """Section 5 step 2: SHA-256 of the UTF-8 bytes of token + ":" + p, `difficulty` zero bits."""
    if not 1 <= len(proof) <= 64:
        return False
    try:
        data = f"{token}:{proof}".encode()
    except UnicodeEncodeError:
        return False  # a lone surrogate has no UTF-8 bytes: no proof can hold one
    value = int.from_bytes(hashlib.sha256(data).digest(), "big")
    return 256 - value.bit_length() >= difficulty


# -------------------------------------------------------------------------------------------------
# state the oracle needs: challenges handed out, players and what they were credited
# -------------------------------------------------------------------------------------------------


@dataclass
class Challenge:
    token: str
    proof: str
    owner: str  # player_id
    action: str
    points: int
    difficulty: int
    min_ms: int
    expires_at: float  # epoch seconds, from the challenge's expires_at
    started_before: float  # time.time() before action:start was sent
    started_after: float  # ... and after its ack came back
    acked: dict | None = None  # the first ok ack, once credited

    def expired(self, now: float) -> set[bool]:
        """Possible values of "expired at the server" for a completion sent at `now` (one clock,
        one machine; 0.25 s of slack for the trip)."""
        if now + 0.25 < self.expires_at:
            return {False}
        if now > self.expires_at + 0.25:
            return {True}
        return {True, False}

    def too_fast(self, now: float) -> set[bool]:
        least = self.min_ms / 1000
        if now - self.started_before >= least + 0.05:
            return {False}
        if now - self.started_after + 0.25 < least:
            return {True}
        return {True, False}


@dataclass
class PlayerState:
    total: int = 0
    suspended: bool = False


@dataclass
class Registry:
    """Every player this package's server knows, with what the fuzz tests expect of it."""

    players: dict[str, PlayerState] = field(default_factory=dict)
    challenges: dict[str, Challenge] = field(default_factory=dict)

    def add_player(self, player_id: str) -> PlayerState:
        return self.players.setdefault(player_id, PlayerState())


# -------------------------------------------------------------------------------------------------
# socket events
# -------------------------------------------------------------------------------------------------


def _room_payload(payload: dict) -> tuple[str, str | None]:
    if set(payload) != {"room"} or not isinstance(payload["room"], str):
        return INVALID, None
    room = payload["room"]
    return (VALID, room) if is_room(room) or is_tournament_board(room) else (INVALID, None)


def socket_outcomes(event: object, args: list, role: str, me: str | None, guild: str | None,
                    registry: Registry, now: float | None = None) -> set[str]:
    """The outcomes allowed for `[event, *args]` sent by a `role` ("player" or "spectator")
    connection; for a player, `me` and `guild` are its player_id and guild."""
    now = time.time() if now is None else now
    if not isinstance(event, str) or event not in KNOWN_EVENTS:
        return {"invalid_payload"}
    acting = event.startswith("action:")
    if len(args) != 1 or not isinstance(args[0], dict):
        return {"invalid_payload", "not_a_player"} if acting and role == "spectator" else {"invalid_payload"}
    payload = args[0]
    suspended = role == "player" and me is not None and registry.players.get(me, PlayerState()).suspended

    if event in ("watch", "unwatch"):
        verdict, room = _room_payload(payload)
        if verdict == INVALID or room is None:
            return {"invalid_payload"}
        if event == "unwatch":
            return {"ok"}
        if room.startswith("guild:") and (role == "spectator" or room != f"guild:{guild}"):
            return {"forbidden"}
        if is_tournament_board(room):
            return {"ok", "not_found"}  # anyone may watch one that exists (section 10)
        return {"ok"}

    if event == "action:start":
        if set(payload) != {"action"} or not isinstance(payload["action"], str):
            return {"invalid_payload", "not_a_player"} if role == "spectator" else {"invalid_payload"}
        action = payload["action"]
        size_ok = 1 <= len(action) <= 64  # PROTOCOL gives no limit: past it, "oversize" is allowed too
        if role == "spectator":
            return {"not_a_player"} if size_ok else {"not_a_player", "invalid_payload"}
        if action in CATALOGUE:
            return {"ok", "rate_limited"} | ({"suspended"} if suspended else set())
        # An unknown action is unknown_action; suspension may be checked before the catalogue.
        base = {"unknown_action"} | ({"suspended"} if suspended else set())
        return base if size_ok else base | {"invalid_payload"}

    if event == "action:complete":
        if set(payload) != {"token", "proof"} or not all(isinstance(payload[k], str) for k in ("token", "proof")):
            return {"invalid_payload", "not_a_player"} if role == "spectator" else {"invalid_payload"}
        token, proof = payload["token"], payload["proof"]
        sizes_ok = 1 <= len(proof) <= 64 and 1 <= len(token) <= 2048
        oversize = set() if sizes_ok else {"invalid_payload"}
        if role == "spectator":
            return {"not_a_player"} | oversize
        challenge = registry.challenges.get(token)
        if challenge is None or challenge.owner != me:
            return {"token_invalid"} | oversize
        good = proof_ok(token, proof, challenge.difficulty)
        if challenge.acked is not None:  # credited before: any valid proof answers the stored ack
            return {"ok"} if good else {"proof_invalid"} | oversize
        outcomes: set[str] = set()
        for expired in challenge.expired(now):
            for fast in challenge.too_fast(now):
                if expired:
                    outcomes.add("token_expired")  # which of expiry and proof is checked first: unsaid
                    if not good:
                        outcomes.add("proof_invalid")
                elif fast:
                    outcomes.add("too_fast")
                    if not good:
                        outcomes.add("proof_invalid")
                elif good:
                    outcomes |= {"ok", "suspended"} if suspended else {"ok"}
                else:
                    outcomes.add("proof_invalid")
        return outcomes | oversize

    # leaderboard:get
    allowed = {"board", "period", "limit", "offset", "around"}
    if not set(payload) <= allowed or "board" not in payload:
        return {"invalid_payload"}
    verdicts = [VALID if is_board(payload["board"]) else INVALID]
    if "period" in payload:
        value = payload["period"]
        verdicts.append(EITHER if value is None else VALID if value in PERIODS else INVALID)
    if "limit" in payload:
        value = payload["limit"]
        if value is None:
            verdicts.append(EITHER)
        else:
            in_range = is_int(value) and not isinstance(value, BigLiteral) and 1 <= value <= 100
            verdicts.append(VALID if in_range else INVALID)
    if "offset" in payload:
        value = payload["offset"]
        if value is None:
            verdicts.append(EITHER)
        elif not is_int(value):
            verdicts.append(INVALID)
        elif isinstance(value, BigLiteral):
            verdicts.append(INVALID if value.digits.startswith("-") else EITHER)
        elif value < 0:
            verdicts.append(INVALID)
        else:
            verdicts.append(VALID if value <= 1_000_000 else EITHER)  # "offset >= 0": no upper bound given
    around = payload.get("around")
    if "around" in payload:
        verdicts.append(EITHER if around is None else VALID if is_id(around) else INVALID)
        if "offset" in payload:
            verdicts.append(EITHER)  # "with around instead of offset": both at once is unsaid
    maybe_missing = (around is not None and "around" in payload) or is_tournament_board(payload["board"])
    ok = {"ok", "not_found"} if maybe_missing else {"ok"}
    return with_invalid(combine(*verdicts), ok)


# -------------------------------------------------------------------------------------------------
# HTTP
# -------------------------------------------------------------------------------------------------


def _parse_int(digits: str) -> int | BigLiteral:
    return BigLiteral(digits) if len(digits) > 4000 else int(digits)  # any length is a JSON number


def decode_body(body: bytes) -> tuple[str, object]:
    """(VALID, value) for a UTF-8 JSON body; (INVALID, None) for one that is no JSON; (EITHER, value)
    for a body a lenient decoder reads but RFC 8259 does not accept (a BOM, UTF-16/32)."""
    try:
        return VALID, json.loads(body.decode("utf-8"), parse_int=_parse_int)
    except (UnicodeDecodeError, ValueError, RecursionError):
        pass
    try:
        return EITHER, json.loads(body, parse_int=_parse_int)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return INVALID, None


def name_verdict(name: object) -> str:
    """`name`: 1-32 printable chars. Definitely valid: 1-32 printable ASCII, not all spaces.
    Definitely invalid: empty, over 32 code points, a control character or a lone surrogate (no
    reading calls those printable). Anything else (spaces only, non-ASCII letters, format or
    unassigned characters, astral characters that make it over 32 UTF-16 units) may go either way."""
    if not isinstance(name, str):
        return INVALID
    if not name or len(name) > 32 or any(unicodedata.category(c) in ("Cc", "Cs") for c in name):
        return INVALID
    if all(" " <= c <= "~" for c in name) and name.strip(" "):
        return VALID
    return EITHER


def session_verdict(value: object) -> str:
    if not isinstance(value, dict):
        return INVALID
    if not set(value) <= {"player_id", "name", "region", "guild"} or not {"player_id", "name", "region"} <= set(value):
        return INVALID
    verdicts = [
        VALID if is_id(value["player_id"]) else INVALID,
        name_verdict(value["name"]),
        VALID if isinstance(value["region"], str) and value["region"] in REGIONS else INVALID,
    ]
    if "guild" in value:
        guild = value["guild"]
        verdicts.append(EITHER if guild is None else VALID if is_id(guild) else INVALID)
    return combine(*verdicts)


def body_verdict(body: bytes, judge) -> tuple[str, object]:
    decoded, value = decode_body(body)
    if decoded == INVALID:
        return INVALID, None
    return combine(decoded, judge(value)), value


def suspension_verdict(value: object) -> str:
    if not isinstance(value, dict) or set(value) != {"suspended"}:
        return INVALID
    return VALID if isinstance(value["suspended"], bool) else INVALID


def key_verdict(header: str | None, key: str) -> str:
    """VALID for `Authorization: Bearer <API_KEY>` exactly; EITHER for a spelling a lenient server
    may take (scheme case, spaces around the key); INVALID for anything else or no header."""
    if header is None:
        return INVALID
    if header == f"Bearer {key}":
        return VALID
    scheme, _, rest = header.partition(" ")
    if scheme.lower() == "bearer" and rest.strip(" \t") == key:
        return EITHER
    return INVALID


def query_verdict(items: list[tuple[Part, Part]]) -> tuple[str, bool]:
    """The leaderboard query (section 6): (verdict, whether `around` is given)."""
    verdicts = []
    seen: set[str] = set()
    around = False
    decoded = [(k.decoded(), v.decoded()) for k, v in items]
    for key, value in decoded:
        if key is None or key not in ("period", "limit", "offset", "around"):
            return INVALID, False
        if key in seen:
            verdicts.append(EITHER)  # a repeated parameter: which one counts is unsaid
        seen.add(key)
        if value is None:
            verdicts.append(INVALID)
            continue
        if value == "":
            verdicts.append(EITHER)  # an empty value: absent, or invalid
            continue
        if key == "period":
            verdicts.append(VALID if value in PERIODS else INVALID)
        elif key in ("limit", "offset"):
            if not (value.isascii() and value.isdigit()):
                verdicts.append(INVALID)
                continue
            number = int(value)
            if key == "limit":
                verdicts.append(VALID if 1 <= number <= 100 else INVALID)
            else:
                verdicts.append(VALID if number <= 1_000_000 else EITHER)
        else:
            around = True
            verdicts.append(VALID if is_id(value) else INVALID)
    if "around" in seen and "offset" in seen:
        verdicts.append(EITHER)
    return combine(*verdicts), around

