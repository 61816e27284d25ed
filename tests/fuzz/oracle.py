"""What PROTOCOL.md lets the server answer to a given input.

Each rule returns the set of outcomes allowed: "ok" or error codes for socket acks, statuses for
HTTP. Where PROTOCOL.md is silent (which of two errors comes first, whether `null` counts as an
absent optional field, what "printable" means beyond ASCII, a limit it does not give), every
reading is allowed; where it speaks, exactly what it says is.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import date

from tests.fuzz.strategies import CATALOGUE, Part
from tests.fuzz.wire import (
    BOARD_HISTORY_DAYS,
    ENDED_PARAMS,
    KNOWN_EVENTS,
    MAX_WATCHED,
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
    region: str | None = None  # its session's, when a fuzz connection plays as it
    tournaments: dict[str, int] = field(default_factory=dict)  # joined: tournament -> its score there


SLACK_S = 0.5  # one clock, one machine: the trip of a request, either side of a tournament's start or end


@dataclass
class TournamentState:
    """A tournament the fuzz fixtures put (section 10), and who joined it."""

    start: float  # epoch seconds
    end: float
    regions: tuple[str, ...] | None  # None: every region
    max_players: int | None
    entrants: set[str] = field(default_factory=set)

    def states(self, now: float) -> set[str]:
        """Its possible states at the server for a call sent at `now`."""
        out = set()
        if now - SLACK_S < self.start:
            out.add("upcoming")
        if self.start <= now + SLACK_S and now - SLACK_S < self.end:
            out.add("running")
        if self.end <= now + SLACK_S:
            out.add("ended")
        return out

    def join_outcomes(self, player_id: str, region: str, now: float) -> set[str]:
        """tournament:join by a player of `region`: tournament_closed when ended or not open to the
        region; joining twice, or before the start, is ok; else ok until max_players joined."""
        out = set()
        for state in self.states(now):
            if state == "ended" or (self.regions is not None and region not in self.regions):
                out.add("tournament_closed")
            elif player_id not in self.entrants and self.max_players is not None \
                    and len(self.entrants) >= self.max_players:
                out.add("tournament_full")
            else:
                out.add("ok")
        return out


@dataclass
class Registry:
    """Every player this package's server knows, with what the fuzz tests expect of it; the
    tournaments the fuzz fixtures put."""

    players: dict[str, PlayerState] = field(default_factory=dict)
    challenges: dict[str, Challenge] = field(default_factory=dict)
    tournaments: dict[str, TournamentState] = field(default_factory=dict)

    def add_player(self, player_id: str) -> PlayerState:
        return self.players.setdefault(player_id, PlayerState())


@dataclass(frozen=True)
class Viewer:
    """Who sends an event: a "player" (its id, region and guild) or a "spectator", and the rooms
    its connection added with `watch` so far (section 4: at most MAX_WATCHED)."""

    role: str
    player_id: str | None = None
    region: str | None = None
    guild: str | None = None
    watched: frozenset[str] = frozenset()

    @property
    def home(self) -> frozenset[str]:
        """The player's own rooms that are valid watch names: they never count toward the limit."""
        if self.role != "player":
            return frozenset()
        return frozenset(room for room in (f"region:{self.region}", f"guild:{self.guild}") if is_room(room))

    def counts(self, room: str) -> bool:
        """Whether watching `room` now adds one to the connection's watched rooms."""
        return room not in self.home and room not in self.watched


# -------------------------------------------------------------------------------------------------
# board reads (sections 6, 10): the board, its period and an ended period's day or week
# -------------------------------------------------------------------------------------------------

DAY_S = 86_400
_DAY_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_WEEK_RE = re.compile(r"([0-9]{4})-W([0-9]{2})")
_EPOCH = date(1970, 1, 1).toordinal()


def period_span(param: str, value: str) -> tuple[str, tuple[float, float] | None]:
    """(verdict, (start, end) in epoch seconds) of a `day` ("2026-11-30") or `week` ("2026-W48"):
    INVALID when it names no day or ISO week; EITHER for year 0 (ISO 8601's year 1 BC, which
    a calendar of years 1-9999 does not have: no such board, or no such day)."""
    match = (_DAY_RE if param == "day" else _WEEK_RE).fullmatch(value)
    if match is None:
        return INVALID, None
    year = int(match.group(1))
    if year == 0:
        return EITHER, None
    try:
        first = date(year, int(match.group(2)), int(match.group(3))) if param == "day" \
            else date.fromisocalendar(year, int(match.group(2)), 1)
    except ValueError:
        return INVALID, None
    start = (first.toordinal() - _EPOCH) * DAY_S  # in integer seconds: 9999-12-31 ends past datetime's range
    return VALID, (start, start + (DAY_S if param == "day" else 7 * DAY_S))


def ended_outcomes(param: str, value: str, now: float) -> tuple[str, set[str]]:
    """An ended day's or week's board: readable for BOARD_HISTORY_DAYS after its end; older or
    future ones are not_found. One that has not ended yet is neither ended nor in the future:
    not_found, or invalid_payload, PROTOCOL.md does not say."""
    verdict, span = period_span(param, value)
    if span is None:
        return verdict, {"not_found"} if verdict == EITHER else set()
    start, end = span
    gone = end + BOARD_HISTORY_DAYS * DAY_S
    if now + SLACK_S < end:
        return (EITHER if now >= start else VALID), {"not_found"}
    if now - SLACK_S < end:
        return EITHER, {"ok", "not_found"}
    if now + SLACK_S < gone:
        return VALID, {"ok"}
    return VALID, {"not_found"} if now - SLACK_S >= gone else {"ok", "not_found"}


def board_outcomes(board: str, period: str | None, named: dict[str, object], registry: Registry,
                   now: float) -> tuple[str, set[str]]:
    """(verdict, outcomes when valid) of reading the well-formed `board` for `period` (None: a
    null or empty one, which may be taken as absent, `all`) with `named`, the `day` / `week`
    given (a value None: null or empty, absent or invalid). A day goes with `daily`, a week with
    `weekly`, never both; a tournament's board has period `all` only, and is not_found unless
    that tournament exists (whether its existence or the period is checked first is unsaid)."""
    verdicts = []
    if period is None:
        verdicts.append(EITHER)
        period = "all"
    given: dict[str, str] = {}
    for param, value in named.items():
        if value is None:
            verdicts.append(EITHER)
        elif not isinstance(value, str):
            return INVALID, set()
        else:
            given[param] = value
    if len(given) > 1:
        return INVALID, set()
    if is_tournament_board(board):
        known = board.removeprefix("tournament:") in registry.tournaments  # all of them still readable
        if period != "all" or given:
            return (INVALID, set()) if known else (EITHER, {"not_found"})
        return combine(*verdicts), {"ok"} if known else {"not_found"}
    if not given:
        return combine(*verdicts), {"ok"}
    [(param, value)] = given.items()
    if period != ENDED_PARAMS[param]:
        return INVALID, set()
    verdict, outcomes = ended_outcomes(param, value, now)
    return combine(*verdicts, verdict), outcomes


# -------------------------------------------------------------------------------------------------
# socket events
# -------------------------------------------------------------------------------------------------


def _room_payload(payload: dict) -> tuple[str, str | None]:
    if set(payload) != {"room"} or not isinstance(payload["room"], str):
        return INVALID, None
    room = payload["room"]
    return (VALID, room) if is_room(room) or is_tournament_board(room) else (INVALID, None)


def socket_outcomes(event: object, args: list, viewer: Viewer, registry: Registry,
                    now: float | None = None) -> set[str]:
    """The outcomes allowed for `[event, *args]` sent by `viewer`'s connection."""
    now = time.time() if now is None else now
    if not isinstance(event, str) or event not in KNOWN_EVENTS:
        return {"invalid_payload"}
    role, me, guild = viewer.role, viewer.player_id, viewer.guild
    # Playing, and joining a tournament, take a player (a spectator "may watch and read, never act").
    acting = event.startswith("action:") or event == "tournament:join"
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
        full = viewer.counts(room) and len(viewer.watched) >= MAX_WATCHED
        if is_tournament_board(room):
            # Anyone may watch one that exists (section 10); which of the limit and the unknown
            # tournament is checked first is unsaid.
            found = "ok" if room.removeprefix("tournament:") in registry.tournaments else "not_found"
            return ({"too_many_rooms", found} - {"ok"}) if full else {found}
        return {"too_many_rooms"} if full else {"ok"}

    if event == "tournament:join":
        # The id follows the player_id rule (section 10): any other string is no tournament id.
        if set(payload) != {"tournament"} or not is_id(payload["tournament"]):
            return {"invalid_payload", "not_a_player"} if role == "spectator" else {"invalid_payload"}
        if role == "spectator":
            return {"not_a_player"}
        tournament = registry.tournaments.get(payload["tournament"])
        if tournament is None:
            return {"not_found"}
        if viewer.region is None or me is None:
            raise AssertionError("a player's join is judged by its id and region")
        return tournament.join_outcomes(me, viewer.region, now)

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
    allowed = {"board", "period", "limit", "offset", "around", *ENDED_PARAMS}
    if not set(payload) <= allowed or "board" not in payload:
        return {"invalid_payload"}
    board, period = payload["board"], payload.get("period", "all")
    if not is_board(board) or not (period is None or period in PERIODS):
        return {"invalid_payload"}
    named = {param: payload[param] for param in ENDED_PARAMS if param in payload}
    verdict, ok = board_outcomes(board, period, named, registry, now)
    verdicts = [verdict]
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
        if around is not None:
            ok = ok | {"not_found"}  # a player with no score on that board
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
    """The leaderboard query's parameters one by one (section 6): (verdict, whether `around` is
    given). A `day` or `week` is judged with its board and period (`board_outcomes`)."""
    verdicts = []
    seen: set[str] = set()
    around = False
    decoded = [(k.decoded(), v.decoded()) for k, v in items]
    for key, value in decoded:
        if key is None or key not in ("period", "limit", "offset", "around", *ENDED_PARAMS):
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
        elif key == "around":
            around = True
            verdicts.append(VALID if is_id(value) else INVALID)
    if "around" in seen and "offset" in seen:
        verdicts.append(EITHER)
    return combine(*verdicts), around


def query_readings(items: list[tuple[Part, Part]]) -> list[dict[str, str]]:
    """The query as the server may read it, parameter -> text: the first of a repeated
    parameter counting, or the last (undecodable ones are query_verdict's to refuse)."""
    decoded = [(k.decoded(), v.decoded()) for k, v in items]
    pairs = [(k, v) for k, v in decoded if k is not None and v is not None]
    return [dict(reversed(pairs)), dict(pairs)]


def http_board_outcomes(board: str, items: list[tuple[Part, Part]], registry: Registry,
                        now: float | None = None) -> set[str]:
    """`GET /api/v1/leaderboards/<board>?<items>` as socket outcomes (ok, not_found,
    invalid_payload) for a board name as the server reads it. An empty period is absent or
    invalid; an empty day or week too."""
    now = time.time() if now is None else now
    if not is_board(board):
        return {"invalid_payload"}
    verdict, around = query_verdict(items)
    outcomes: set[str] = set()
    for reading in query_readings(items):
        period = reading.get("period", "all") or None
        named: dict[str, object] = {p: reading[p] or None for p in ENDED_PARAMS if p in reading}
        board_verdict, ok = board_outcomes(board, period, named, registry, now)
        if around:
            ok = ok | {"not_found"}  # a player with no score on that board
        outcomes |= with_invalid(combine(verdict, board_verdict), ok)
    return outcomes

