"""Bad input on every HTTP endpoint and every socket event (PROTOCOL.md sections 1, 3, 4-6, 8).

Wrong types, missing and unknown fields, oversize values, non-object payloads, non-JSON bodies and
messages over the size limit. Socket acks must be `{"ok": false, "error": {"code": "invalid_payload",
"message": <str>}}`; HTTP errors carry the section 3 status and the `{"error": {"code", "message"}}`
body. After every burst: no 5xx, nothing credited, the same connection still answers, /healthz is 200.

Many payloads share one connection and one app per test; each test collects every payload that got
a wrong answer and reports them together.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
import socketio
from yarl import URL

from app.anticheat.proof import solve
from app.config import Secret
from tests.support import connect_refusal

KEY = "k" * 20
GHOST = "bad_input_ghost"  # the player_id of bad session bodies: it must never be created
GOOD_SESSION = {"player_id": GHOST, "name": "Ghost", "region": "eu"}

# -------------------------------------------------------------------------------------------------
# payload catalogues
# -------------------------------------------------------------------------------------------------

# sio.call(event, data): None sends no argument at all, a tuple sends one argument per element.
NO_PAYLOAD = None
NULL = (None,)


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


# values that are not a JSON string
NOT_STRINGS = [1, 0, -1, 1.5, True, False, None, [], ["x"], {}, {"x": "y"}, nested(200)]
# values that are not a JSON integer (note 10.0: a float is not an integer)
NOT_INTEGERS = ["10", "", "abc", 10.0, 1.5, True, False, None, [10], {"n": 10}]


def non_objects(valid: dict) -> list:
    """Payloads that are not one JSON object, for an event whose valid payload is `valid`."""
    return [
        NO_PAYLOAD,
        NULL,
        (valid, valid),  # two arguments
        (valid, None),
        [],
        [valid],
        list(valid.items()),
        "",
        json.dumps(valid),  # the object as a JSON string
        42,
        0,
        4.2,
        True,
        False,
        # (bytes would be a binary attachment, which closes the connection: tests/handlers/test_packets.py)
        nested(200),
    ]


def field_cases(valid: dict, strings: tuple = (), integers: tuple = (), required: tuple = ()) -> list:
    """Wrong types for each field, each required field missing, unknown fields."""
    cases: list = []
    for name in strings:
        cases += [{**valid, name: value} for value in NOT_STRINGS]
    for name in integers:
        cases += [{**valid, name: value} for value in NOT_INTEGERS]
    for name in required:
        cases.append({k: v for k, v in valid.items() if k != name})
    cases += [
        {},
        {**valid, "unexpected": 1},
        {**valid, "points": 1000},
        {**valid, "ok": True},
        {**valid, "": ""},
        {k.upper(): v for k, v in valid.items()},
    ]
    return cases


def socket_cases(event: str, ctx: dict) -> tuple[dict, list]:
    """(a valid payload, the bad payloads) for one event. ctx: a live challenge and its proof."""
    token, proof = ctx["token"], ctx["proof"]
    if event in ("watch", "unwatch"):
        valid = {"room": "region:eu"}
        bad = field_cases(valid, strings=("room",), required=("room",)) + [
            {"room": value}
            for value in ("", " ", "eu", "region:", "region:mars", "region:EU", "region:eu ", "Region:eu",
                          "guild:", "guild:" + "g" * 65, "guild:a b", "guild:a:b", "global", "r" * 81,
                          "region:eu\x00", "x" * 15000)
        ]
        if event == "watch":
            bad.append({"room": "player:" + ctx["player_id"]})
        return valid, bad
    if event == "action:start":
        valid = {"action": "quick"}
        bad = field_cases(valid, strings=("action",), required=("action",)) + [
            {"action": ""},
            {"action": "a" * 5000},
            {"action": "quick", "difficulty": 0},
            {"action": "quick", "min_ms": 0},
            # `limited` allows 2 starts a minute: none of these may count (checked afterwards)
            {"action": "limited", "extra": 1},
            {"action": "limited", "points": 1},
            {"action": ["limited"]},
        ]
        return valid, bad
    if event == "action:complete":
        valid = {"token": token, "proof": proof}
        bad = field_cases(valid, strings=("token", "proof"), required=("token", "proof")) + [
            {"token": token, "proof": "x" * 65},
            {"token": token, "proof": proof + "0" * (65 - len(proof))},
            {"token": token, "proof": ""},
            {"token": "", "proof": proof},
            {"token": "x" * 5000, "proof": proof},
            {"token": token + "x" * 5000, "proof": proof},
            {"token": token, "proof": proof, "action_id": ctx["action_id"]},
            {"token": token, "proof": proof, "duplicate": True},
            {"token": token, "proof": proof, "score": {"total": 1}},
            {"token": token, "proof": proof, "action": "big"},
        ]
        return valid, bad
    if event == "leaderboard:get":
        valid = {"board": "global"}
        bad = field_cases({**valid, "period": "all", "around": ctx["player_id"]},
                          strings=("board", "period"), required=("board",))
        bad += field_cases({**valid, "limit": 10, "offset": 0}, integers=("limit", "offset"))
        bad += [{**valid, "around": value} for value in NOT_STRINGS if value is not None]
        bad += [
            {**valid, "limit": 0},
            {**valid, "limit": 101},
            {**valid, "limit": -1},
            {**valid, "limit": 10**30},
            {**valid, "offset": -1},
            {**valid, "offset": -(10**30)},
            {**valid, "period": "yearly"},
            {**valid, "period": "ALL"},
            {**valid, "period": ""},
            {**valid, "around": ""},
            {**valid, "around": "bad id!"},
            {**valid, "around": "a" * 65},
            {**valid, "sort": "desc"},
            {"board": ""},
            {"board": "Global"},
            {"board": "global:all"},
            {"board": "region:mars"},
            {"board": "guild:"},
            {"board": "guild:" + "g" * 65},
            {"board": "player:p1"},
            {"board": "b" * 81},
            {"board": "x" * 15000},
        ]
        return valid, bad
    raise AssertionError(event)


SESSION_BODIES: dict[str, list] = {
    "wrong_types": (
        [{**GOOD_SESSION, field: value} for field in ("player_id", "name", "region") for value in NOT_STRINGS]
        + [{**GOOD_SESSION, "guild": value} for value in NOT_STRINGS if value is not None]
    ),
    "missing_fields": [
        {},
        {"name": "Ghost", "region": "eu"},
        {"player_id": GHOST, "region": "eu"},
        {"player_id": GHOST, "name": "Ghost"},
        {"guild": "owls"},
    ],
    "unknown_fields": [
        {**GOOD_SESSION, "points": 1000},
        {**GOOD_SESSION, "score": 5},
        {**GOOD_SESSION, "token": "x"},
        {**GOOD_SESSION, "admin": True},
        {**GOOD_SESSION, "": ""},
        {"PLAYER_ID": GHOST, "name": "Ghost", "region": "eu"},
    ],
    "bad_values": [
        {**GOOD_SESSION, "player_id": "a" * 65},
        {**GOOD_SESSION, "player_id": "a" * 5000},
        {**GOOD_SESSION, "player_id": ""},
        {**GOOD_SESSION, "player_id": "bad id"},
        {**GOOD_SESSION, "player_id": "ghöst"},
        {**GOOD_SESSION, "player_id": "../ghost"},
        {**GOOD_SESSION, "name": "n" * 33},
        {**GOOD_SESSION, "name": "n" * 5000},
        {**GOOD_SESSION, "name": ""},
        {**GOOD_SESSION, "name": "   "},
        {**GOOD_SESSION, "name": "a\nb"},
        {**GOOD_SESSION, "name": "a\x00b"},
        {**GOOD_SESSION, "name": "\u200b"},
        {**GOOD_SESSION, "region": "mars"},
        {**GOOD_SESSION, "region": "EU"},
        {**GOOD_SESSION, "region": ""},
        {**GOOD_SESSION, "region": "r" * 5000},
        {**GOOD_SESSION, "guild": "g" * 65},
        {**GOOD_SESSION, "guild": ""},
        {**GOOD_SESSION, "guild": "a b"},
    ],
    "non_object_json": [[], [GOOD_SESSION], "ghost", 1, 0, 1.5, True, False, None, nested(300)],
}

RAW_SESSION_BODIES: list[bytes] = [
    b"",
    b" ",
    b"garbage",
    b"\x00\x01\x02",
    b"\xff\xfe\xfd\xfc",  # not UTF-8
    b'{"player_id": "\xff\xfe", "name": "Ghost", "region": "eu"}',  # invalid UTF-8 inside a string
    b'{"player_id": "bad_input_ghost", "name": "Ghost", "region": "eu"',  # truncated
    b"{'player_id': 'bad_input_ghost', 'name': 'Ghost', 'region': 'eu'}",  # not JSON quotes
    b'{"player_id": "bad_input_ghost", "name": "Ghost", "region": "eu",}',  # trailing comma
    b'{"player_id": NaN, "name": "Ghost", "region": "eu"}',
    b'{"player_id": "bad_input_ghost", "name": Infinity, "region": "eu"}',
    b'{"player_id": "bad_input_ghost", "name": "Ghost", "region": "eu"} {}',  # two documents
    b"player_id=bad_input_ghost&name=Ghost&region=eu",  # a form, not JSON
    b"[" * 8000 + b"]" * 8000,  # nested deeper than any decoder recursion limit
    b'{"a":' * 2500 + b"1" + b"}" * 2500,
]


# -------------------------------------------------------------------------------------------------
# helpers
# -------------------------------------------------------------------------------------------------


def show(data: object) -> str:
    if data is None:
        return "<no payload>"
    if isinstance(data, tuple):
        return f"<{len(data)} args: {data!r}"[:90] + ">"
    return repr(data)[:90]


def listing(wrong: list) -> str:
    """Every wrong answer on its own line, untruncated, for the failure message."""
    return "".join(f"\n  {item!r}" for item in wrong)


def event_args(event: object, data: object) -> list:
    """The event packet's array, encoding `data` the way python-socketio's `call` does."""
    if data is None:
        return [event]
    if isinstance(data, tuple):
        return [event, *data]
    return [event, data]


def is_invalid_payload_ack(reply: object) -> bool:
    return (
        isinstance(reply, dict)
        and set(reply) == {"ok", "error"}
        and reply["ok"] is False
        and isinstance(reply["error"], dict)
        and set(reply["error"]) == {"code", "message"}
        and reply["error"]["code"] == "invalid_payload"
        and isinstance(reply["error"]["message"], str)
        and bool(reply["error"]["message"])
    )


async def burst(client, event: str, payloads: list) -> list:
    """Send each payload; return the ones whose ack was not invalid_payload, with what came back."""
    wrong = []
    for data in payloads:
        try:
            reply = await client.call(event, data, timeout=5)
        except (socketio.exceptions.TimeoutError, TimeoutError):
            reply = "<no ack within 5 s>"
        if not is_invalid_payload_ack(reply):
            wrong.append((event, show(data), reply))
    return wrong


async def fetch(http: aiohttp.ClientSession, method: str, url: str | URL, **kwargs) -> tuple[int, dict, str]:
    async with http.request(method, url, **kwargs) as resp:
        return resp.status, dict(resp.headers), await resp.text()


def http_error_mismatch(status: int, headers: dict, text: str, want_status: int, want_code: str) -> str | None:
    """None when the reply is `want_status` with the protocol's error body, else what was wrong."""
    if status != want_status:
        return f"status {status}, body {text[:200]!r}"
    if not headers.get("Content-Type", "").startswith("application/json"):
        return f"content type {headers.get('Content-Type')!r}, body {text[:200]!r}"
    try:
        body = json.loads(text)
    except ValueError:
        return f"body is not JSON: {text[:200]!r}"
    if not (isinstance(body, dict) and set(body) == {"error"} and isinstance(body["error"], dict)
            and set(body["error"]) == {"code", "message"} and body["error"]["code"] == want_code
            and isinstance(body["error"]["message"], str) and body["error"]["message"]):
        return f"body {body!r}"
    return None


async def total_of(http: aiohttp.ClientSession, url: str, player_id: str) -> int:
    async with http.get(f"{url}/api/v1/players/{player_id}") as resp:
        assert resp.status == 200, await resp.text()
        return (await resp.json())["score"]["total"]


async def assert_healthy(http: aiohttp.ClientSession, url: str) -> None:
    async with http.get(f"{url}/healthz") as resp:
        assert resp.status == 200, await resp.text()


async def assert_no_ghost(http: aiohttp.ClientSession, url: str) -> None:
    """No bad session body created the player it named."""
    status, headers, text = await fetch(http, "GET", f"{url}/api/v1/players/{GHOST}")
    assert http_error_mismatch(status, headers, text, 404, "not_found") is None, (status, text)


async def assert_answers(client) -> None:
    reply = await client.call("leaderboard:get", {"board": "global"}, timeout=5)
    assert reply["ok"] is True and reply["board"] == "global", reply


async def connection_gauge(http: aiohttp.ClientSession, url: str, role: str) -> float:
    async with http.get(f"{url}/metrics") as resp:
        text = await resp.text()
    prefix = f'scoreboard_connections{{role="{role}"}} '
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix):])
    return 0.0


async def new_challenge(client) -> dict:
    started = await client.call("action:start", {"action": "quick"})
    assert started["ok"], started
    challenge = started["challenge"]
    return {**challenge, "proof": solve(challenge["token"], challenge["difficulty"])}


class ConnectionClosed(Exception):
    pass


class RawSocket:
    """Socket.IO v5 spoken by hand over a bare websocket, to send frames no client library sends."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.last_id = 100

    async def frame(self, timeout: float = 5) -> str:
        while True:
            msg = await self.ws.receive(timeout=timeout)
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise ConnectionClosed(f"{msg.type!r} {msg.data!r}")
            if msg.data == "2":  # engine.io ping
                await self.ws.send_str("3")
                continue
            return msg.data

    def next_id(self) -> int:
        self.last_id += 1
        return self.last_id

    async def ack(self, ack_id: int, timeout: float = 5) -> object:
        """The one argument of the ack with this id; pushed events in between are skipped."""
        prefix = f"43{ack_id}["
        while True:
            data = await self.frame(timeout)
            if data.startswith(prefix):
                args = json.loads(data[len(prefix) - 1:])
                return args[0] if len(args) == 1 else ("<ack with args>", args)

    async def call(self, event: object, data: object = None, timeout: float = 5) -> object:
        ack_id = self.next_id()
        await self.ws.send_str(f"42{ack_id}" + json.dumps(event_args(event, data)))
        return await self.ack(ack_id, timeout)


class RawPolling:
    """Socket.IO v5 spoken by hand over HTTP long-polling (`transports: ["polling"]`).

    A GET is only sent when a packet is due, so no long-poll is left hanging when a test ends."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http = http
        self.url = url
        self.inbox: list[str] = []
        self.last_id = 100

    @classmethod
    async def open(cls, http: aiohttp.ClientSession, app_url: str, auth: dict | None = None) -> RawPolling:
        base = f"{app_url}/socket.io/?EIO=4&transport=polling"
        async with http.get(base) as resp:
            opened = await resp.text()
        assert opened.startswith("0{"), opened
        raw = cls(http, f"{base}&sid={json.loads(opened[1:])['sid']}")
        assert await raw.post("40" + (json.dumps(auth) if auth is not None else "")) == 200
        assert (await raw.packet()).startswith("40{"), "namespace connect refused"
        return raw

    async def post(self, body: str | bytes) -> int:
        async with self.http.post(self.url, data=body, timeout=aiohttp.ClientTimeout(total=10)) as resp:
            await resp.read()
            return resp.status

    async def poll(self) -> list[str]:
        async with self.http.get(self.url, timeout=aiohttp.ClientTimeout(total=10)) as resp:
            text = await resp.text()
        assert resp.status == 200, (resp.status, text)
        return text.split("\x1e")

    async def packet(self) -> str:
        while not self.inbox:
            for pkt in await self.poll():
                if pkt == "2":  # engine.io ping
                    await self.post("3")
                elif pkt == "1":
                    raise ConnectionClosed("the server closed the session")
                elif pkt != "6":  # noop
                    self.inbox.append(pkt)
        return self.inbox.pop(0)

    async def ack(self, ack_id: int, timeout: float = 5) -> object:
        prefix = f"43{ack_id}["
        async with asyncio.timeout(timeout):
            while True:
                pkt = await self.packet()
                if pkt.startswith(prefix):
                    args = json.loads(pkt[len(prefix) - 1:])
                    return args[0] if len(args) == 1 else ("<ack with args>", args)

    async def call(self, event: object, data: object = None, timeout: float = 5) -> object:
        self.last_id += 1
        assert await self.post(f"42{self.last_id}" + json.dumps(event_args(event, data))) == 200
        return await self.ack(self.last_id, timeout)


@pytest.fixture
async def raw_socket(http, app_url):
    opened: list[RawSocket] = []

    async def open_socket(auth: dict | None = None) -> RawSocket:
        ws = await http.ws_connect(app_url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket")
        raw = RawSocket(ws)
        opened.append(raw)
        assert (await raw.frame()).startswith("0{")
        await ws.send_str("40" + (json.dumps(auth) if auth is not None else ""))
        assert (await raw.frame()).startswith("40{"), "namespace connect refused"
        return raw

    yield open_socket
    for raw in opened:
        if not raw.ws.closed:
            await raw.ws.close()


@pytest.fixture
async def played(player):
    """A connected player that has been credited once (total 10): (player_id, client)."""
    session, client = await player(region="eu")
    _, ack = await client.play("quick")
    assert ack["ok"] and ack["score"]["total"] == 10, ack
    return session["player"]["player_id"], client


# -------------------------------------------------------------------------------------------------
# socket events
# -------------------------------------------------------------------------------------------------

SOCKET_EVENTS = ["watch", "unwatch", "action:start", "action:complete", "leaderboard:get"]


@pytest.mark.parametrize(
    ("event", "role"),
    [(event, "player") for event in SOCKET_EVENTS]
    + [(event, "spectator") for event in ("watch", "unwatch", "leaderboard:get")],
)
async def test_socket_event_bad_payloads(event, role, played, connect, http, app_url):
    player_id, me = played
    challenge = await new_challenge(me)
    ctx = {**challenge, "player_id": player_id}
    client = me if role == "player" else await connect()
    valid, bad = socket_cases(event, ctx)

    wrong = await burst(client, event, bad + non_objects(valid))
    assert not wrong, f"{len(wrong)} bad payloads not refused as invalid_payload: {listing(wrong)}"

    assert await total_of(http, app_url, player_id) == 10, "a bad payload credited something"
    await assert_answers(client)
    await assert_healthy(http, app_url)

    reply = await client.call(event, valid)
    assert reply["ok"] is True, reply
    if event == "action:complete":
        # the refused attempts neither credited nor burned the challenge
        assert reply["duplicate"] is False and reply["points"] == 10, reply
        assert await total_of(http, app_url, player_id) == 20
    if event == "action:start":
        # refused starts of `limited` (2 a minute) did not count toward its rate limit
        for _ in range(2):
            started = await client.call("action:start", {"action": "limited"})
            assert started["ok"] is True, started


async def test_socket_bad_payloads_over_polling(played, http, app_url):
    player_id, _ = played
    raw = await RawPolling.open(http, app_url)
    valid, bad = socket_cases("leaderboard:get", {"token": "t", "proof": "p", "action_id": "a",
                                                  "player_id": player_id})
    textual = [data for data in non_objects(valid) if not isinstance(data, bytes)]
    wrong = await burst(raw, "leaderboard:get", bad[:40] + textual)
    wrong += await burst(raw, "watch", [{"room": 1}, {"room": "region:mars"}, {}] + textual)
    wrong += await burst(raw, "nope", [{}, NO_PAYLOAD])
    assert not wrong, listing(wrong)
    # engine.io and socket.io level garbage in a polling POST closes that session (test_packets.py), never a 5xx
    for body in (b"xyz", b"\xff\xfe", b"42garbage", b"42[", b"4" + b"[" * 5000 + b"]" * 5000):
        garbage = await RawPolling.open(http, app_url)
        status = await garbage.post(body)
        assert status < 500, (body[:20], status)
    reply = await raw.call("leaderboard:get", {"board": "global"})
    assert reply.get("ok") is True, reply
    assert await total_of(http, app_url, player_id) == 10
    await assert_healthy(http, app_url)


UNKNOWN_EVENTS = ["nope", "action:cancel", "action:credit", "score:set", "Watch", "leaderboard:GET",
                  "watch ", "message", "connect_error", "", "e" * 1000, "événement"]


async def test_unknown_events(played, connect, http, app_url):
    player_id, me = played
    spectator = await connect()
    payloads = [{}, {"room": "region:eu"}, {"action": "quick"}, NO_PAYLOAD, NULL, "x", [1], ({}, {})]
    wrong = []
    for client in (me, spectator):
        for event in UNKNOWN_EVENTS:
            wrong += await burst(client, event, payloads)
    assert not wrong, f"unknown events not answered with invalid_payload: {listing(wrong)}"
    assert await total_of(http, app_url, player_id) == 10
    await assert_answers(me)
    await assert_answers(spectator)
    await assert_healthy(http, app_url)


@pytest.mark.parametrize("event", ["connect", "disconnect"])
async def test_reserved_event_names_sent_by_a_client(event, played, http, app_url):
    """`connect` and `disconnect` are lifecycle events of the server, not client-to-server events:
    a client that emits them is sending an unknown event, and its connection must not change."""
    player_id, me = played
    players_before = await connection_gauge(http, app_url, "player")
    reply = await me.call(event, {}, timeout=5)
    assert is_invalid_payload_ack(reply), f"ack to a client-sent {event!r} event: {reply!r}"
    started = await me.call("action:start", {"action": "quick"})
    assert started["ok"] is True, f"after a client-sent {event!r}, the player's connection answers {started}"
    assert await connection_gauge(http, app_url, "player") == players_before
    assert await connection_gauge(http, app_url, "spectator") == 0
    await assert_healthy(http, app_url)


async def test_binary_where_a_string_is_expected(player, connect, http, app_url):
    """Payloads are JSON objects (section 1): a binary attachment is not a JSON string, and a
    packet carrying one closes its connection, unanswered and taken for nothing."""
    session, me = await player(region="eu")
    player_id = session["player"]["player_id"]
    _, ack = await me.play("quick")
    assert ack["ok"], ack
    challenge = await new_challenge(me)
    sends = [("action:start", {"action": b"quick"}),
             ("action:complete", {"token": challenge["token"].encode(), "proof": challenge["proof"]}),
             ("action:complete", {"token": challenge["token"], "proof": challenge["proof"].encode()}),
             ("watch", {"room": b"region:na"}),
             ("leaderboard:get", {"board": b"global"}),
             ("leaderboard:get", {"board": "global", "period": b"all"})]

    async def send(event: str, data: dict) -> tuple | None:
        """None when the packet was refused as it should be: no ack, and the connection closed."""
        client = await connect(session["token"])
        try:
            return event, show(data), await client.call(event, data, timeout=3)
        except (socketio.exceptions.TimeoutError, socketio.exceptions.BadNamespaceError):
            pass
        for _ in range(100):
            if not client.sio.connected:
                return None
            await asyncio.sleep(0.05)
        return event, show(data), "unanswered, but the connection stayed open"

    wrong = [outcome for outcome in await asyncio.gather(*(send(e, d) for e, d in sends)) if outcome]
    credited = await total_of(http, app_url, player_id) - 10
    assert not wrong and not credited, f"points credited: {credited}; binary packets taken: {listing(wrong)}"
    reply = await me.call("action:complete", {"token": challenge["token"], "proof": challenge["proof"]})
    assert reply["ok"] and reply["duplicate"] is False, reply


async def test_malformed_socketio_packets(played, raw_socket, new_session, http, app_url):
    """Socket.IO packets no client library sends, but well-formed: the connection survives them, stays
    the same player and still answers. (Packets that cannot be decoded close the connection:
    tests/handlers/test_packets.py.)"""
    player_id, _ = played
    session = await new_session()
    raw = await raw_socket({"token": session["token"]})
    frames = ['42[1,{}]', "42[null]", "6", "43999[]", "40", '40{"token":"x"}']
    for frame in frames:
        await raw.ws.send_str(frame)
    for name in ({"a": 1}, ["watch"]):
        await raw.ws.send_str("42" + json.dumps([name, {}]))
    reply = await raw.call("leaderboard:get", {"board": "global"})
    assert reply.get("ok") is True, reply

    # packets whose event name is a number, null or a bool are unknown events
    # (an object or array as the name is dropped by python-socketio itself, unacknowledged)
    wrong = []
    for name in (1, 0, None, True, 1.5):
        reply = await raw.call(name, {})
        if not is_invalid_payload_ack(reply):
            wrong.append((name, reply))
    reply = await raw.call("leaderboard:get", nested(300))
    if not is_invalid_payload_ack(reply):
        wrong.append(("deeply nested payload", reply))
    assert not wrong, listing(wrong)

    started = await raw.call("action:start", {"action": "quick"})
    assert started["ok"] is True, f"the player's connection changed: {started}"
    assert await total_of(http, app_url, player_id) == 10
    await assert_healthy(http, app_url)


@pytest.mark.parametrize("frame", ["x", "", b"\x00\xff"], ids=["text-x", "empty-text", "binary"])
async def test_undecodable_engineio_frame(frame, played, raw_socket, new_session, http, app_url):
    """A websocket frame that is no engine.io packet at all. The server may keep the connection or
    close it (as the JS engine.io server does on a parse error), but with a well-formed close: never
    a corrupt frame, never a 5xx, and every other connection is untouched."""
    player_id, me = played
    raw = await raw_socket({"token": (await new_session())["token"]})
    if isinstance(frame, bytes):
        await raw.ws.send_bytes(frame)
    else:
        await raw.ws.send_str(frame)
    try:
        reply = await raw.call("leaderboard:get", {"board": "global"})
    except ConnectionClosed as closed:
        assert "ERROR" not in str(closed), f"the connection was not closed cleanly: {closed}"
    else:
        assert reply.get("ok") is True, reply
    await assert_answers(me)
    assert await total_of(http, app_url, player_id) == 10
    await assert_healthy(http, app_url)


async def test_socket_message_over_the_limit_websocket(played, raw_socket, new_session, connect, http, app_url,
                                                       settings):
    """A message over MAX_PAYLOAD_BYTES is refused: with invalid_payload, or by closing that connection
    as Socket.IO does past maxPayload. Nothing is credited and the server keeps serving."""
    player_id, me = played
    session = await new_session()
    raw = await raw_socket({"token": session["token"]})
    challenge = await new_challenge(me)
    pad = "x" * (settings.max_payload_bytes + 1)
    ack_id = raw.next_id()
    await raw.ws.send_str(f"42{ack_id}" + json.dumps(
        ["action:complete", {"token": challenge["token"], "proof": challenge["proof"], "pad": pad}]))
    try:
        reply = await raw.ack(ack_id, timeout=5)
    except ConnectionClosed:
        reply = None  # the server closed the connection: an accepted way to refuse
    if reply is not None:
        assert is_invalid_payload_ack(reply), reply
        assert (await raw.call("leaderboard:get", {"board": "global"}))["ok"] is True

    assert await total_of(http, app_url, player_id) == 10
    await assert_answers(me)  # other connections are untouched
    fresh = await connect(session["token"])
    await assert_answers(fresh)
    await assert_healthy(http, app_url)
    done = await me.call("action:complete", {"token": challenge["token"], "proof": challenge["proof"]})
    assert done["ok"] is True and done["duplicate"] is False, done


async def test_socket_message_over_the_limit_polling(played, new_session, http, app_url, settings):
    """Over polling, an oversize POST is refused (4xx, the session closed) or answered invalid_payload.
    Like every real polling client, a long-poll GET is pending while the POST is sent."""
    player_id, me = played
    challenge = await new_challenge(me)
    raw = await RawPolling.open(http, app_url, {"token": (await new_session())["token"]})
    pending_get = asyncio.ensure_future(raw.poll())
    await asyncio.sleep(0.1)
    body = "421" + json.dumps(["action:complete", {"token": challenge["token"], "proof": challenge["proof"],
                                                  "pad": "x" * (settings.max_payload_bytes + 1)}])
    status = await raw.post(body)
    got = await asyncio.wait_for(pending_get, 10)
    if status == 200:
        raw.inbox += [pkt for pkt in got if pkt not in ("2", "6")]
        assert is_invalid_payload_ack(await raw.ack(1)), got
    else:
        assert status in (400, 413), status
        assert "1" in got, f"the session was not closed: {got}"

    assert await total_of(http, app_url, player_id) == 10
    await assert_answers(me)
    fresh = await RawPolling.open(http, app_url, {"token": (await new_session())["token"]})
    assert (await fresh.call("leaderboard:get", {"board": "global"})).get("ok") is True
    await assert_healthy(http, app_url)
    done = await me.call("action:complete", {"token": challenge["token"], "proof": challenge["proof"]})
    assert done["ok"] is True and done["duplicate"] is False, done


@pytest.mark.parametrize(
    "auth",
    [{"token": None}, {"token": ""}, {"token": True}, {"token": ["x"]}, {"token": {"token": "x"}},
     {"token": "x" * 5000}, {"token": "a.b.c"}, {"token": "\ud800"}, {"Token": "x"}, "token", [1], [{}]],
    ids=["null", "empty", "bool", "list", "object", "oversize", "dots", "lone-surrogate", "wrong-key",
         "string", "list-auth", "list-of-object"],
)
async def test_bad_connect_auth_is_token_invalid(auth, app_url, http):
    # The refused client closes its engine.io connection, as socket.io-client does.
    assert await connect_refusal(app_url, auth) == {"message": "token_invalid"}
    await assert_healthy(http, app_url)


# -------------------------------------------------------------------------------------------------
# HTTP: sessions
# -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("group", list(SESSION_BODIES) + ["not_json"])
async def test_session_bad_bodies(group, http, app_url):
    url = f"{app_url}/api/v1/sessions"
    if group == "not_json":
        requests = [dict(data=body, headers={"Content-Type": "application/json"}) for body in RAW_SESSION_BODIES]
        requests += [dict(data=b"garbage", headers={"Content-Type": "text/plain"}), dict()]  # no body at all
    else:
        requests = [dict(data=json.dumps(body), headers={"Content-Type": "application/json"})
                    for body in SESSION_BODIES[group]]
    wrong = []
    for kwargs in requests:
        status, headers, text = await fetch(http, "POST", url, **kwargs)
        problem = http_error_mismatch(status, headers, text, 400, "invalid_payload")
        if problem:
            wrong.append((repr(kwargs.get("data"))[:90], problem))
    assert not wrong, f"{len(wrong)} bad bodies not refused with 400 invalid_payload: {listing(wrong)}"
    await assert_no_ghost(http, app_url)
    await assert_healthy(http, app_url)
    async with http.post(url, json=GOOD_SESSION) as resp:
        assert resp.status == 201, await resp.text()


def padded(body: dict, size: int) -> bytes:
    """`body` as JSON followed by whitespace, exactly `size` bytes long: still valid JSON."""
    raw = json.dumps(body).encode()
    return raw + b" " * (size - len(raw))


async def chunks(total: int):
    for _ in range(total // 1000 + 1):
        yield b" " * 1000


@pytest.mark.parametrize("kind", ["valid_json", "garbage", "chunked"])
async def test_session_body_over_the_limit(kind, http, app_url, settings):
    limit = settings.max_payload_bytes
    body = {"valid_json": padded(GOOD_SESSION, limit + 1),
            "garbage": b"\xff" * (limit + 1),
            "chunked": chunks(limit + 1)}[kind]
    status, headers, text = await fetch(http, "POST", f"{app_url}/api/v1/sessions", data=body,
                                        headers={"Content-Type": "application/json"})
    assert http_error_mismatch(status, headers, text, 413, "payload_too_large") is None, (status, text)
    await assert_no_ghost(http, app_url)
    await assert_healthy(http, app_url)
    # exactly at the limit is not over it
    async with http.post(f"{app_url}/api/v1/sessions", data=padded(GOOD_SESSION, limit),
                         headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 201, await resp.text()


NOT_THE_KEY = [
    None,  # no Authorization header
    "",
    "Bearer",
    "Bearer ",
    "Bearer wrong",
    f"Bearer {KEY[:-1]}",
    f"Bearer {KEY}k",
    f"Bearer {KEY.upper()}",
    f"Basic {KEY}",
    f"Token {KEY}",
    KEY,
    f"Bearer{KEY}",
    f"Bearer {'k' * 5000}",
    "Bearer é",
]

BODIES_FOR_AUTH = [
    json.dumps(GOOD_SESSION).encode(),
    b"garbage",
    b"",
    b"\xff\xfe",
    b"[]",
    json.dumps({**GOOD_SESSION, "points": 1}).encode(),
    b"\xff" * 20000,  # over the size limit too: still 401 without the key
]


async def test_guest_sessions_off_needs_the_api_key(start_app, settings, http):
    app = await start_app(settings, allow_guest_sessions=False, api_key=Secret(KEY))
    url = f"{app.url}/api/v1/sessions"
    wrong = []
    for auth in NOT_THE_KEY:
        headers = {} if auth is None else {"Authorization": auth}
        for body in BODIES_FOR_AUTH:
            status, resp_headers, text = await fetch(http, "POST", url, data=body, headers=headers)
            problem = http_error_mismatch(status, resp_headers, text, 401, "unauthorized")
            if problem:
                wrong.append((auth and auth[:40], body[:40], problem))
    assert not wrong, f"requests without the right key not refused with 401 unauthorized: {listing(wrong)}"

    right = {"Authorization": f"Bearer {KEY}"}
    bad_bodies = [json.dumps(body).encode() for group in SESSION_BODIES.values() for body in group[:6]]
    bad_bodies += RAW_SESSION_BODIES
    for body in bad_bodies:
        status, resp_headers, text = await fetch(http, "POST", url, data=body, headers=right)
        problem = http_error_mismatch(status, resp_headers, text, 400, "invalid_payload")
        if problem:
            wrong.append(("right key", body[:60], problem))
    assert not wrong, f"bad bodies with the right key not refused with 400 invalid_payload: {listing(wrong)}"

    status, resp_headers, text = await fetch(http, "POST", url, data=b"\xff" * 20000, headers=right)
    assert http_error_mismatch(status, resp_headers, text, 413, "payload_too_large") is None, (status, text)
    await assert_no_ghost(http, app.url)
    await assert_healthy(http, app.url)

    async with http.post(url, json=GOOD_SESSION, headers=right) as resp:
        assert resp.status == 201, await resp.text()
        created = await resp.json()
    assert created["player"] == {**GOOD_SESSION, "guild": None}


async def raw_http(url: str, request: bytes) -> tuple[int, bytes]:
    """One HTTP/1.1 request written byte for byte (for headers no client library would send)."""
    target = URL(url)
    reader, writer = await asyncio.open_connection(target.host, target.port)
    try:
        writer.write(request)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


async def test_authorization_header_that_is_not_utf8(start_app, settings, http):
    app = await start_app(settings, allow_guest_sessions=False, api_key=Secret(KEY))
    body = json.dumps(GOOD_SESSION).encode()
    wrong = []
    for key in (b"\xff\xfe", b"k" * 19 + b"\xff", b"\xc3\x28", b"\xed\xa0\x80"):
        request = (b"POST /api/v1/sessions HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                   b"Authorization: Bearer " + key + b"\r\nContent-Length: " + str(len(body)).encode()
                   + b"\r\nConnection: close\r\n\r\n" + body)
        status, raw_body = await raw_http(app.url, request)
        try:
            error = json.loads(raw_body)["error"]
        except (ValueError, KeyError, TypeError):
            error = raw_body[:200]
        if status != 401 or not isinstance(error, dict) or error.get("code") != "unauthorized":
            wrong.append((key, status, error))
    assert not wrong, f"a key that is not UTF-8 must be 401 unauthorized: {listing(wrong)}"
    await assert_no_ghost(http, app.url)
    await assert_healthy(http, app.url)


# -------------------------------------------------------------------------------------------------
# HTTP: leaderboards, players, the catalogue, operations, unknown paths, wrong methods
# -------------------------------------------------------------------------------------------------

BAD_BOARD_QUERIES = [
    "limit=0", "limit=101", "limit=-1", "limit=abc", "limit=1.5", "limit=1e2", "limit=true", "limit=%00",
    "limit=10&limit=20", "limit=99999999999999999999999", "offset=-1", "offset=x", "offset=1.0",
    "offset=0x10", "period=yearly", "period=ALL", "period=all&period=daily", "period=%ff",
    "around=bad%20id", "around=" + "a" * 65, "around=%ff", "around=a%00", "foo=1", "board=global",
    "limit=10&sort=desc",
]

BAD_BOARDS = [
    "mars", "Global", "global:all", "region", "region:", "region:mars", "region:EU", "region:eu%20",
    "guild:", "guild:" + "g" * 65, "guild:a%20b", "guild:a:b", "player:p1", "%ff", "%00", "x" * 3000,
]


@pytest.mark.parametrize("board", ["global", "region:eu", "guild:owls"])
async def test_leaderboard_bad_queries(board, played, http, app_url):
    player_id, me = played
    wrong = []
    for query in BAD_BOARD_QUERIES:
        url = URL(f"{app_url}/api/v1/leaderboards/{board}?{query}", encoded=True)
        status, headers, text = await fetch(http, "GET", url)
        problem = http_error_mismatch(status, headers, text, 400, "invalid_payload")
        if problem:
            wrong.append((query[:60], problem))
    assert not wrong, f"bad queries not refused with 400 invalid_payload: {listing(wrong)}"
    status, headers, text = await fetch(http, "GET", f"{app_url}/api/v1/leaderboards/{board}?around=nobody_here")
    assert http_error_mismatch(status, headers, text, 404, "not_found") is None, (status, text)
    status, _, text = await fetch(http, "GET", f"{app_url}/api/v1/leaderboards/{board}?limit=5")
    assert status == 200 and json.loads(text)["board"] == board, text
    assert await total_of(http, app_url, player_id) == 10
    await assert_answers(me)
    await assert_healthy(http, app_url)


async def test_leaderboard_bad_boards(http, app_url):
    wrong = []
    for board in BAD_BOARDS:
        url = URL(f"{app_url}/api/v1/leaderboards/{board}", encoded=True)
        status, headers, text = await fetch(http, "GET", url)
        problem = http_error_mismatch(status, headers, text, 400, "invalid_payload")
        if problem:
            wrong.append((board[:60], problem))
    assert not wrong, f"bad boards not refused with 400 invalid_payload: {listing(wrong)}"
    await assert_healthy(http, app_url)


BAD_PLAYER_IDS = ["a" * 65, "a" * 5000, "bad%20id", "%00", "%ff", "..%2F..", "%C3%BC", "p1%3Fx=1", "p1;drop",
                  "%7B%22%24ne%22%3A1%7D", "nobody_here"]


async def test_player_bad_ids(played, http, app_url):
    """An id that no player can have is an unknown player: 404 not_found (400 invalid_payload is
    accepted too, the id being malformed). Never a 5xx."""
    player_id, _ = played
    wrong = []
    for pid in BAD_PLAYER_IDS:
        status, headers, text = await fetch(http, "GET", URL(f"{app_url}/api/v1/players/{pid}", encoded=True))
        if status == 400:
            problem = http_error_mismatch(status, headers, text, 400, "invalid_payload")
        else:
            problem = http_error_mismatch(status, headers, text, 404, "not_found")
        if problem:
            wrong.append((pid[:60], problem))
    assert not wrong, listing(wrong)
    assert await total_of(http, app_url, player_id) == 10
    await assert_healthy(http, app_url)


async def test_operational_endpoints_ignore_junk(http, app_url):
    """/healthz, /readyz, /metrics and the catalogue take no input: junk query, headers or body change nothing."""
    junk = dict(data=b"\xff\x00garbage" * 100, headers={"Content-Type": "application/json", "X-Junk": "%ff"})
    for path in ("/healthz", "/readyz", "/metrics", "/api/v1/actions"):
        url = URL(f"{app_url}{path}?x=%ff&limit=-1&&=&%00", encoded=True)
        status, headers, text = await fetch(http, "GET", url, **junk)
        assert status == 200, (path, status, text[:200])
        if path == "/metrics":
            assert headers["Content-Type"].startswith("text/plain") and "# TYPE" in text
        else:
            assert headers["Content-Type"].startswith("application/json"), (path, headers)
    status, _, text = await fetch(http, "GET", f"{app_url}/api/v1/actions")
    assert {row["action"] for row in json.loads(text)["actions"]} >= {"quick", "big"}


UNKNOWN_PATHS = [
    ("GET", "/nope"), ("GET", "/api"), ("GET", "/api/v1"), ("GET", "/api/v1/"), ("GET", "/api/v2/sessions"),
    ("POST", "/api/v2/sessions"), ("GET", "/api/v1/sessions/extra"), ("POST", "/api/v1/sessions/"),
    ("GET", "/api/v1/leaderboards"), ("GET", "/api/v1/leaderboards/"), ("GET", "/api/v1/leaderboards/global/all"),
    ("GET", "/api/v1/players/"), ("GET", "/api/v1/players/p1/extra"), ("GET", "/api/v1/actions/quick"),
    ("GET", "/healthz/x"), ("GET", "/metrics/x"), ("GET", "/readyz/"), ("GET", "/API/V1/ACTIONS"),
    ("GET", "/.env"), ("GET", "/index.html"), ("DELETE", "/nope"), ("PUT", "/api/v1/nope"),
    ("GET", "/%ff"), ("GET", "/" + "x" * 3000),
]


async def test_unknown_paths_are_not_found(http, app_url):
    wrong = []
    for method, path in UNKNOWN_PATHS:
        url = URL(f"{app_url}{path}", encoded=True)
        status, headers, text = await fetch(http, method, url, data=b"garbage")
        problem = http_error_mismatch(status, headers, text, 404, "not_found")
        if problem:
            wrong.append((method, path[:60], problem))
    assert not wrong, f"unknown paths not answered 404 not_found with the error body: {listing(wrong)}"
    await assert_healthy(http, app_url)


WRONG_METHODS = [
    ("GET", "/api/v1/sessions", "POST"), ("PUT", "/api/v1/sessions", "POST"),
    ("DELETE", "/api/v1/sessions", "POST"), ("PATCH", "/api/v1/sessions", "POST"),
    ("POST", "/api/v1/leaderboards/global", "GET"), ("PUT", "/api/v1/leaderboards/region:eu", "GET"),
    ("DELETE", "/api/v1/leaderboards/global", "GET"), ("POST", "/api/v1/players/p1", "GET"),
    ("PUT", "/api/v1/players/p1", "GET"), ("DELETE", "/api/v1/players/p1", "GET"),
    ("PATCH", "/api/v1/players/p1", "GET"), ("GET", "/api/v1/players/p1/suspension", "PUT"),
    ("POST", "/api/v1/actions", "GET"), ("PUT", "/api/v1/actions", "GET"), ("DELETE", "/api/v1/actions", "GET"),
    ("POST", "/healthz", "GET"), ("DELETE", "/healthz", "GET"), ("POST", "/readyz", "GET"),
    ("POST", "/metrics", "GET"), ("PUT", "/metrics", "GET"), ("TRACE", "/healthz", "GET"),
]


async def test_wrong_methods(http, app_url, settings):
    wrong = []
    for method, path, allowed in WRONG_METHODS:
        for body in (None, b"garbage", json.dumps(GOOD_SESSION).encode()):
            status, headers, text = await fetch(http, method, f"{app_url}{path}", data=body)
            problem = http_error_mismatch(status, headers, text, 405, "method_not_allowed")
            if problem is None and allowed not in headers.get("Allow", ""):
                problem = f"Allow header {headers.get('Allow')!r} lacks {allowed}"
            if problem:
                wrong.append((method, path, body and body[:20], problem))
    # a wrong method with a body over the limit is still a wrong method, never a 5xx
    status, headers, text = await fetch(http, "PUT", f"{app_url}/api/v1/sessions",
                                        data=b"x" * (settings.max_payload_bytes + 1))
    if status not in (405, 413) or http_error_mismatch(
            status, headers, text, status, {405: "method_not_allowed", 413: "payload_too_large"}[status]):
        wrong.append(("PUT", "/api/v1/sessions", "oversize", status, text[:200]))
    assert not wrong, f"wrong methods not answered 405 method_not_allowed: {listing(wrong)}"
    await assert_no_ghost(http, app_url)
    await assert_healthy(http, app_url)


async def test_unknown_static_paths_are_not_found(http, app_url):
    """Under /static/ too, an unknown path is 404 not_found with the error body (section 3)."""
    wrong = []
    for path in ("/static/nope.js", "/static/", "/static/a/b.css", "/static/%ff"):
        status, headers, text = await fetch(http, "GET", URL(f"{app_url}{path}", encoded=True))
        problem = http_error_mismatch(status, headers, text, 404, "not_found")
        if problem:
            wrong.append((path, problem))
    assert not wrong, listing(wrong)
    await assert_healthy(http, app_url)


async def test_trailing_newline_is_not_an_id(played, connect, http, app_url):
    """`[A-Za-z0-9_-]` has no newline: "x\n" is no player_id, guild id or room name (sections 3, 4, 6)."""
    player_id, me = played
    spectator = await connect()
    wrong = []
    for body in ({**GOOD_SESSION, "player_id": GHOST + "\n"}, {**GOOD_SESSION, "guild": "owls\n"}):
        status, headers, text = await fetch(http, "POST", f"{app_url}/api/v1/sessions", json=body)
        problem = http_error_mismatch(status, headers, text, 400, "invalid_payload")
        if problem:
            wrong.append(("POST /api/v1/sessions", body, problem))
    for path in ("/api/v1/leaderboards/guild:owls%0A", f"/api/v1/leaderboards/global?around={player_id}%0A"):
        status, headers, text = await fetch(http, "GET", URL(f"{app_url}{path}", encoded=True))
        problem = http_error_mismatch(status, headers, text, 400, "invalid_payload")
        if problem:
            wrong.append(("GET " + path, problem))
    for client in (me, spectator):
        wrong += await burst(client, "watch", [{"room": "guild:owls\n"}])
        wrong += await burst(client, "unwatch", [{"room": "guild:owls\n"}])
        wrong += await burst(client, "leaderboard:get", [{"board": "guild:owls\n"},
                                                         {"board": "global", "around": player_id + "\n"}])
    assert not wrong, listing(wrong)
    await assert_healthy(http, app_url)
