"""The fuzz suite's Socket.IO side: a player and a spectator on raw sockets, their live
challenges, and one exchange checked against PROTOCOL.md."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import TYPE_CHECKING

import aiohttp
from hypothesis import assume, event as note_event, strategies as st

from app.anticheat.proof import solve
from tests.conftest import TEST_ACTIONS
from tests.fuzz.oracle import Challenge, socket_outcomes
from tests.fuzz.strategies import STATIC_POOL, Pool, socket_args, socket_payloads
from tests.fuzz.wire import (
    BOARD_ANSWER,
    KNOWN_EVENTS,
    MAX_PAYLOAD_BYTES,
    Closed,
    RawSocket,
    ack_outcome,
    dumps,
    is_int,
    request,
    show,
)

if TYPE_CHECKING:
    from tests.fuzz.conftest import Server  # the conftest imports this module


class Actors:
    """A player and a spectator connection to the fuzz server, and the player's challenges.
    (A plain class: hypothesis prints a failing example's fixtures, dataclasses field by field.)"""

    def __init__(self, server: Server, http: aiohttp.ClientSession, player_id: str, guild: str, token: str) -> None:
        self.server = server
        self.http = http
        self.player_id = player_id
        self.guild = guild
        self.token = token
        self.conns: dict[str, RawSocket] = {}
        self.pool = Pool()
        self.strategies: dict[str, st.SearchStrategy] = {}

    def __repr__(self) -> str:
        return f"<Actors player {self.player_id} guild {self.guild} on {self.server.url}>"

    async def connection(self, role: str) -> RawSocket:
        """The role's connection, opened again when an earlier example lost it (so that each
        example starts from a connected socket and shrinking stays meaningful)."""
        conn = self.conns.get(role)
        if conn is None or conn.closed:
            auth = {"token": self.token} if role == "player" else None
            conn = self.conns[role] = await RawSocket.open(self.http, self.server.url, auth)
        return conn

    @property
    def registry(self):
        return self.server.registry


async def new_session(http: aiohttp.ClientSession, server: Server, guild: str | None = None) -> dict:
    player_id = f"fz{uuid.uuid4().hex[:12]}"
    body = {"player_id": player_id, "name": player_id, "region": "eu"}
    if guild:
        body["guild"] = guild
    async with http.post(f"{server.url}/api/v1/sessions", json=body) as resp:
        assert resp.status == 201, await resp.text()
        session = await resp.json()
    server.registry.add_player(player_id)
    return session


async def start_challenge(conn: RawSocket, owner: str, action: str, registry) -> Challenge:
    before = time.time()
    reply = await conn.call("action:start", {"action": action})
    after = time.time()
    assert reply.get("ok") is True, reply
    c = reply["challenge"]
    expires = datetime.fromisoformat(c["expires_at"].replace("Z", "+00:00")).timestamp()
    challenge = Challenge(token=c["token"], proof=solve(c["token"], c["difficulty"]), owner=owner, action=action,
                          points=TEST_ACTIONS["actions"][action]["points"], difficulty=c["difficulty"],
                          min_ms=c["min_ms"], expires_at=expires, started_before=before, started_after=after)
    registry.challenges[challenge.token] = challenge
    return challenge


def check_ok_shape(event: str, args: list, reply: dict, actors: Actors, where: str) -> None:
    payload = args[0]
    if event == "watch":
        assert set(reply) == {"ok", "room", "snapshot"} and reply["room"] == payload["room"], f"{where}: {reply}"
        snap = reply["snapshot"]
        assert isinstance(snap, dict) and snap.get("room") == payload["room"] and is_int(snap.get("seq")), where
        assert isinstance(snap.get("boards"), dict) and set(snap["boards"]) == {"all", "daily", "weekly"}, where
    elif event == "unwatch":
        assert reply == {"ok": True}, f"{where}: {reply}"
    elif event == "action:start":
        assert set(reply) == {"ok", "challenge"}, f"{where}: {reply}"
        challenge = reply["challenge"]
        assert set(challenge) == {"action_id", "token", "difficulty", "min_ms", "expires_at"}, f"{where}: {reply}"
        assert isinstance(challenge["expires_at"], str) and challenge["expires_at"].endswith("Z"), where
    elif event == "action:complete":
        assert set(reply) == {"ok", "action_id", "points", "duplicate", "score", "achievements"}, f"{where}: {reply}"
        challenge = actors.registry.challenges[payload["token"]]
        state = actors.registry.players[actors.player_id]
        assert reply["points"] == challenge.points, f"{where}: credited {reply['points']}, the action gives " \
                                                    f"{challenge.points}"
        if challenge.acked is None:
            assert reply["duplicate"] is False, f"{where}: a first completion answered as a duplicate: {reply}"
            state.total += challenge.points
            challenge.acked = reply
            assert reply["score"]["total"] == state.total, f"{where}: score {reply['score']}, expected {state.total}"
        else:
            first = challenge.acked
            assert reply["duplicate"] is True, f"{where}: a second completion credited again: {reply}"
            assert {k: v for k, v in reply.items() if k != "duplicate"} == \
                   {k: v for k, v in first.items() if k != "duplicate"}, f"{where}: retry ack {reply} != {first}"
    elif event == "leaderboard:get":
        assert set(reply) == {"ok", *BOARD_ANSWER}, f"{where}: {reply}"
        assert reply["board"] == payload["board"] and reply["period"] == payload.get("period", "all"), where
        limit = payload.get("limit", 10) if payload.get("limit") is not None else 10
        assert isinstance(reply["entries"], list) and len(reply["entries"]) <= limit, f"{where}: {reply}"
        for row in reply["entries"]:
            assert set(row) == {"rank", "player_id", "name", "score"}, f"{where}: row {row}"


async def exchange(actors: Actors, role: str, event: object, args: list, also: frozenset = frozenset()) -> str:
    """Send one fuzzed event and check every property; returns the outcome. `also`: outcomes
    allowed besides the oracle's. A failing example closes its connection, so that a late ack
    is never blamed on the next example (which opens a new one)."""
    conn = await actors.connection(role)
    try:
        return await _exchange(actors, conn, role, event, args, also)
    except BaseException:
        await conn.close()
        raise


async def _exchange(actors: Actors, conn: RawSocket, role: str, event: object, args: list, also: frozenset) -> str:
    where = f"{role} sent {show(event, 80)} with {show(args)}"
    text = dumps([event, *args])
    # A message over MAX_PAYLOAD_BYTES may be refused by closing the connection, as engine.io does
    # (tests/handlers/test_bad_input.py covers it): the fuzz stays under the limit.
    assume(len(text.encode()) < MAX_PAYLOAD_BYTES - 64)
    allowed = socket_outcomes(event, args, role, actors.player_id, actors.guild, actors.registry) | also
    ack_id = await conn.send(event, args, text)
    try:
        ack = await conn.acks_for(ack_id, timeout=5)
    except TimeoutError:
        raise AssertionError(f"{where}: no ack within 5 s (PROTOCOL.md 1: every event is acknowledged)") from None
    except Closed as closed:
        raise AssertionError(f"{where}: the server closed the connection instead of answering: {closed}") from None
    assert len(ack) == 1, f"{where}: ack with {len(ack)} arguments, not one object: {ack!r}"
    reply = ack[0]
    outcome = ack_outcome(reply, where)
    assert outcome in allowed, f"{where}: answered {show(reply)}; PROTOCOL.md allows {sorted(allowed)}"
    note_event(f"{role} {event if isinstance(event, str) and event in KNOWN_EVENTS else 'unknown'} -> {outcome}")
    if outcome == "ok":
        assert isinstance(event, str), f"{where}: an event named {event!r} was answered ok"
        check_ok_shape(event, args, reply, actors, where)

    # the same connection still answers, and had nothing else to say about this event
    try:
        probe = await conn.call("leaderboard:get", {"board": "global"})
    except (TimeoutError, Closed) as exc:
        raise AssertionError(f"{where}: afterwards the connection no longer answers: {exc!r}") from None
    assert isinstance(probe, dict) and probe.get("ok") is True, f"{where}: afterwards a valid call got {probe}"
    assert not conn.stale_acks, f"{where}: acks besides the one expected: {conn.stale_acks}"
    actors.server.assert_alive()
    return outcome


async def assert_total(actors: Actors, where: str) -> None:
    reply = await request(actors.http, "GET", f"{actors.server.url}/api/v1/players/{actors.player_id}")
    assert reply.status == 200, f"{where}: profile {reply!r}"
    total = reply.json()["score"]["total"]
    expected = actors.registry.players[actors.player_id].total
    assert total == expected, f"{where}: the profile total is {total}; valid completions add up to {expected}"


ROLES = st.sampled_from(["player", "spectator"])

STATIC_ARGS = {event: socket_args(socket_payloads(event, STATIC_POOL)) for event in KNOWN_EVENTS}
