"""What the fuzz tests put on the wire and how they read what comes back.

Nothing here knows the app's code: every rule comes from PROTOCOL.md (sections 1, 3-6, 8, 10).

- `dumps` writes JSON text byte for byte, so a payload can hold what `json.dumps` cannot write
  (`BigLiteral`: an integer literal of thousands of digits) and non-finite floats the way
  Python's own JSON module writes them (`NaN`, `Infinity`), which the server's decoder accepts.
- `RawSocket` speaks Socket.IO v5 over a bare websocket, so every ack frame is seen: the tests
  count acks per call (exactly one), not just take the first one a client library hands over.
- `check_http_error`, `ack_outcome` hold the reply shapes of sections 1 and 3;
  `check_board_answer` and `check_tournament` those of sections 6 and 10.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
from yarl import URL

# -------------------------------------------------------------------------------------------------
# the contract
# -------------------------------------------------------------------------------------------------

SOCKET_CODES = frozenset({
    "invalid_payload", "unknown_action", "not_a_player", "token_invalid", "token_expired", "too_fast",
    "proof_invalid", "rate_limited", "suspended", "unavailable", "forbidden", "too_many_rooms", "not_found",
    "tournament_closed", "tournament_full",  # v1.1, section 10
})
# Section 3: "Every HTTP error uses that body" with these statuses.
HTTP_CODES = {400: "invalid_payload", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
              409: "conflict", 413: "payload_too_large", 429: "rate_limited"}
KNOWN_EVENTS = ("watch", "unwatch", "action:start", "action:complete", "leaderboard:get", "tournament:join")
REGIONS = ("na", "eu", "apac", "sa", "oce")  # the default REGIONS (section 2); the fuzz server keeps it
PERIODS = ("all", "daily", "weekly")
# (v1.1, section 6) The parameter naming an ended board, and the period it goes with.
ENDED_PARAMS = {"day": "daily", "week": "weekly"}
BOARD_HISTORY_DAYS = 35  # its default (section 2); the fuzz server keeps it
MAX_WATCHED = 8  # rooms added with `watch` per connection (section 4)
ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_PAYLOAD_BYTES = 16384  # MAX_PAYLOAD_BYTES default: larger bodies are 413 (tested in handlers/)


def is_id(value: object) -> bool:
    return isinstance(value, str) and ID_RE.fullmatch(value) is not None


def is_room(value: object) -> bool:
    if not isinstance(value, str):
        return False
    kind, sep, rest = value.partition(":")
    return bool(sep) and ((kind == "region" and rest in REGIONS) or (kind == "guild" and is_id(rest)))


def is_tournament_board(value: object) -> bool:
    """`tournament:<id>` (v1.1, section 10): a valid name, `not_found` unless that tournament exists."""
    return isinstance(value, str) and value.startswith("tournament:") and is_id(value.removeprefix("tournament:"))


def is_board(value: object) -> bool:
    return value == "global" or is_room(value) or is_tournament_board(value)


# Every leaderboard answer (v1.1, section 6): `resets_at` too.
BOARD_ANSWER = frozenset({"board", "period", "entries", "total_players", "resets_at"})
# GET /api/v1/tournaments/<id>, and the `tournament` of a tournament:join ack (section 10).
TOURNAMENT_KEYS = frozenset({"tournament_id", "title", "start_at", "end_at", "state", "players", "actions", "regions",
                             "max_players"})
TOURNAMENT_STATES = ("upcoming", "running", "ended")


# -------------------------------------------------------------------------------------------------
# JSON text
# -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BigLiteral:
    """An integer literal too long for `str(int)` (Python refuses past 4,300 digits)."""

    digits: str

    def __repr__(self) -> str:
        return f"BigLiteral({self.digits[:12]}...{len(self.digits)} digits)"


def is_int(value: object) -> bool:
    return isinstance(value, BigLiteral) or (isinstance(value, int) and not isinstance(value, bool))


def dumps(value: object) -> str:
    """JSON text for a value tree of dict/list/str/int/float/bool/None/BigLiteral.
    Strings are ASCII-escaped, so a lone surrogate goes out as the legal escape `\\udXXX`."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, BigLiteral):
        return value.digits
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dumps(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def show(value: object, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"...<{len(text)} chars>"


# -------------------------------------------------------------------------------------------------
# Socket.IO v5 over a bare websocket
# -------------------------------------------------------------------------------------------------


class Closed(Exception):
    """The server closed the websocket."""


class RawSocket:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.last_id = 0
        self.pushed = 0
        self.stale_acks: list[tuple[int, str]] = []  # acks for ids already answered or never asked
        self.watched: set[str] = set()  # rooms this connection's watch calls added (toward MAX_WATCHED)

    @classmethod
    async def open(cls, http: aiohttp.ClientSession, base_url: str, auth: dict | None) -> RawSocket:
        ws = await http.ws_connect(base_url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket",
                                   timeout=aiohttp.ClientWSTimeout(ws_close=5), autoping=True)
        raw = cls(ws)
        opened = await raw.frame()
        assert opened.startswith("0{"), opened
        await ws.send_str("40" + (json.dumps(auth) if auth is not None else ""))
        connected = await raw.frame()
        assert connected.startswith("40{"), f"namespace connect refused: {connected}"
        return raw

    @property
    def closed(self) -> bool:
        return self.ws.closed

    async def frame(self, timeout: float = 5) -> str:
        while True:
            msg = await self.ws.receive(timeout=timeout)
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise Closed(f"{msg.type!r} {msg.data!r}")
            if msg.data == "2":  # engine.io ping
                await self.ws.send_str("3")
                continue
            return msg.data

    async def send(self, event: object, args: list, text: str | None = None) -> int:
        """Send one event packet with a fresh ack id; `text` replaces the JSON array when given."""
        self.last_id += 1
        array = text if text is not None else dumps([event, *args])
        await self.ws.send_str(f"42{self.last_id}{array}")
        return self.last_id

    async def acks_for(self, ack_id: int, timeout: float = 5) -> list:
        """Read frames until the ack for `ack_id`; return the ack's argument list.
        Pushed events are counted and skipped; an ack for another id is recorded as stale."""
        prefix = re.compile(r"43(\d+)(.*)", re.S)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError
            data = await self.frame(left)
            match = prefix.fullmatch(data)
            if match is None:
                if data.startswith("42"):
                    self.pushed += 1
                    continue
                if data.startswith("41"):
                    raise Closed(f"the server disconnected the namespace: {data!r}")
                self.stale_acks.append((-1, data))  # anything else is unexpected: report it
                continue
            got = int(match.group(1))
            if got != ack_id:
                self.stale_acks.append((got, data[:200]))
                continue
            args = json.loads(match.group(2))
            return args

    async def call(self, event: object, payload: object, timeout: float = 5) -> Any:
        args = await self.acks_for(await self.send(event, [payload]), timeout)
        assert len(args) == 1, f"ack with {len(args)} arguments: {args!r}"
        return args[0]

    async def close(self) -> None:
        if not self.ws.closed:
            await self.ws.close()


# -------------------------------------------------------------------------------------------------
# reply shapes
# -------------------------------------------------------------------------------------------------


def check_error_object(error: object, where: str, codes: frozenset | set = SOCKET_CODES) -> str:
    """The code of a protocol error object; raises AssertionError on a malformed one."""
    assert isinstance(error, dict), f"{where}: error is not an object: {error!r}"
    assert {"code", "message"} <= set(error) <= {"code", "message", "retry_after_ms"}, \
        f"{where}: error keys {sorted(error)}"
    assert error["code"] in codes, f"{where}: undocumented error code {error['code']!r}"
    assert isinstance(error["message"], str) and error["message"], f"{where}: message {error['message']!r}"
    if "retry_after_ms" in error:
        retry = error["retry_after_ms"]
        assert is_int(retry) and retry >= 0, f"{where}: retry_after_ms {retry!r}"
    if error["code"] == "rate_limited":
        assert "retry_after_ms" in error, f"{where}: rate_limited without retry_after_ms"
    return error["code"]


def ack_outcome(reply: object, where: str) -> str:
    """'ok' or the error code of a socket ack; raises AssertionError when it is not one of the
    two shapes of section 1."""
    assert isinstance(reply, dict), f"{where}: ack is not an object: {reply!r}"
    assert reply.get("ok") in (True, False) and type(reply.get("ok")) is bool, f"{where}: ack 'ok' {reply!r}"
    if reply["ok"]:
        assert "error" not in reply, f"{where}: ok ack with an error: {reply!r}"
        return "ok"
    assert set(reply) == {"ok", "error"}, f"{where}: error ack keys {sorted(reply)}"
    return check_error_object(reply["error"], where)


@dataclass
class Reply:
    status: int
    headers: dict
    body: bytes

    def json(self) -> Any:  # any JSON value: the checks look at what came
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"<{self.status} {self.headers.get('Content-Type')} {self.body[:300]!r}>"


async def request(http: aiohttp.ClientSession, method: str, url: str | URL, *, data: bytes | None = None,
                  headers: dict | None = None, timeout: float = 10) -> Reply:
    async with http.request(method, url, data=data, headers=headers,
                            timeout=aiohttp.ClientTimeout(total=timeout), allow_redirects=False) as resp:
        return Reply(resp.status, dict(resp.headers), await resp.read())


def check_http_error(reply: Reply, where: str, method: str = "GET", extra: dict | None = None) -> str | None:
    """None for a 2xx; the error code of a 4xx; AssertionError for a 5xx or a 4xx that is not
    section 3's `{"error": {"code", "message"}}` with the status that code goes with.
    `extra` maps a status to a code the caller accepts besides section 3's."""
    assert reply.status < 500, f"{where}: {reply!r}"
    if reply.status < 400:
        return None
    codes = {**HTTP_CODES, **(extra or {})}
    assert reply.status in codes, f"{where}: status {reply.status} is no documented error: {reply!r}"
    if reply.status == 405:
        assert reply.headers.get("Allow") is not None, f"{where}: 405 without an Allow header"
    ctype = reply.headers.get("Content-Type", "")
    assert ctype.startswith("application/json"), f"{where}: error content type {ctype!r}: {reply!r}"
    if method == "HEAD":
        return codes[reply.status]
    try:
        body = reply.json()
    except ValueError:
        raise AssertionError(f"{where}: error body is not JSON: {reply!r}") from None
    assert isinstance(body, dict) and set(body) == {"error"}, f"{where}: error body {body!r}"
    code = check_error_object(body["error"], where, codes=set(codes.values()))
    assert code == codes[reply.status], f"{where}: status {reply.status} with code {code!r}"
    return code


def parse_time(value: object, where: str) -> datetime:
    """An ISO 8601 UTC time as section 1 writes them (`2026-11-23T10:00:00.000Z`)."""
    assert isinstance(value, str) and value.endswith("Z"), f"{where}: time {value!r}"
    try:
        return datetime.fromisoformat(value.removesuffix("Z") + "+00:00")
    except ValueError:
        raise AssertionError(f"{where}: time {value!r} is no ISO 8601 time") from None


def check_board_answer(answer: object, where: str, board: str, period: str | None, named: dict[str, str] | None,
                       limit: int) -> None:
    """A leaderboard answer (section 6; a socket ack's without its `ok`): the board and period
    asked for, at most `limit` rows, and `resets_at`: null for `all`, else when a board of that
    period starts over, a UTC midnight (a Monday's for `weekly`), which for an ended board (its
    `day` or `week` in `named`) may be its end or the live board's next reset: section 6 does not
    say, nor whether the answer echoes `day` / `week` (if it does, the value asked for).
    `period` or `named` None: the caller does not know them (a query parameter given twice)."""
    assert isinstance(answer, dict), f"{where}: answer {answer!r}"
    echo = set(named or {})
    assert BOARD_ANSWER <= set(answer) <= BOARD_ANSWER | echo, f"{where}: answer keys {sorted(answer)}"
    assert answer["board"] == board, f"{where}: board {answer['board']!r}"
    assert answer["period"] in PERIODS and answer["period"] == (period or answer["period"]), \
        f"{where}: period {answer['period']!r}"
    for param, value in (named or {}).items():
        assert answer.get(param, value) == value, f"{where}: {param} {answer[param]!r}, asked for {value!r}"
    entries = answer["entries"]
    assert isinstance(entries, list) and len(entries) <= limit, f"{where}: {len(entries)} rows for limit {limit}"
    for row in entries:
        assert isinstance(row, dict) and set(row) == {"rank", "player_id", "name", "score"}, f"{where}: row {row}"
    assert is_int(answer["total_players"]) and answer["total_players"] >= 0, f"{where}: {answer['total_players']!r}"
    resets_at = answer["resets_at"]
    if answer["period"] == "all":
        assert resets_at is None, f"{where}: resets_at {resets_at!r} for period all"
        return
    at = parse_time(resets_at, f"{where}: resets_at")
    assert at == at.replace(hour=0, minute=0, second=0, microsecond=0), \
        f"{where}: resets_at {resets_at} is no UTC midnight"
    assert answer["period"] == "daily" or at.weekday() == 0, f"{where}: resets_at {resets_at} is no Monday"


def check_tournament(value: object, where: str) -> dict:
    """A tournament object (section 10)."""
    assert isinstance(value, dict) and set(value) == TOURNAMENT_KEYS, f"{where}: tournament {value!r}"
    assert is_id(value["tournament_id"]) and isinstance(value["title"], str), f"{where}: {value}"
    assert parse_time(value["start_at"], where) < parse_time(value["end_at"], where), f"{where}: {value}"
    assert value["state"] in TOURNAMENT_STATES, f"{where}: state {value['state']!r}"
    assert is_int(value["players"]) and value["players"] >= 0, f"{where}: players {value['players']!r}"
    for key in ("actions", "regions"):
        names = value[key]
        assert names is None or isinstance(names, list) and all(isinstance(n, str) for n in names), \
            f"{where}: {key} {names!r}"
    assert value["max_players"] is None or is_int(value["max_players"]) and value["max_players"] >= 1, \
        f"{where}: max_players {value['max_players']!r}"
    return value
