"""The fuzz suite's Socket.IO side: a player and a spectator on raw sockets, their live
challenges, the tournaments they join, and one exchange checked against PROTOCOL.md."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime

import aiohttp
from hypothesis import assume, event as note_event, strategies as st

from app.anticheat.proof import solve
from tests.fuzz.harness import Server
from tests.fuzz.oracle import Challenge, PlayerState, TournamentState, Viewer, socket_outcomes
from tests.fuzz.strategies import (
    ENDED,
    FULL,
    OTHER_REGION,
    RUNNING,
    STATIC_POOL,
    UPCOMING,
    Pool,
    socket_args,
    socket_payloads,
)
from tests.fuzz.wire import (
    ENDED_PARAMS,
    KNOWN_EVENTS,
    MAX_PAYLOAD_BYTES,
    Closed,
    RawSocket,
    ack_outcome,
    check_board_answer,
    check_tournament,
    dumps,
    is_int,
    parse_time,
    request,
    show,
)
from tests.support import TEST_ACTIONS


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
    server.registry.add_player(player_id).region = body["region"]
    return session


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def put_tournaments(http: aiohttp.ClientSession, server: Server, api_key: str) -> list[str]:
    """The tournaments of strategies.TOURNAMENTS, put once per server with the operator route
    (section 10), one for each answer tournament:join has for the fuzz players (region eu); their
    ids. The full one's only seat is taken by another player; the ended one ends a moment after
    it is put (a tournament cannot be put already ended), and this waits until it has. The
    registry learns them only once all are in place: no test fuzzes against half of them."""
    registry = server.registry
    if registry.tournaments:
        return list(registry.tournaments)
    put: dict[str, TournamentState] = {}
    day = 86_400.0
    now = time.time()
    # Put in this order: the ended one first, so that its short window has not passed yet.
    windows: dict[str, tuple[float, float, dict]] = {
        ENDED: (now - 60, now + 2, {}),
        RUNNING: (now - 60, now + day, {}),
        UPCOMING: (now + day, now + 2 * day, {}),
        OTHER_REGION: (now - 60, now + day, {"regions": ["na", "apac"]}),
        FULL: (now - 60, now + day, {"max_players": 1}),
    }
    for tournament_id, (start, end, limits) in windows.items():
        body = {"title": f"Fuzz {tournament_id}", "start_at": _iso(start), "end_at": _iso(end), **limits}
        where = f"PUT /api/v1/tournaments/{tournament_id} {body}"
        reply = await request(http, "PUT", f"{server.url}/api/v1/tournaments/{tournament_id}",
                              data=json.dumps(body).encode(), headers={"Authorization": f"Bearer {api_key}"})
        assert reply.status == 200, f"{where}: {reply!r}"
        answer = check_tournament(reply.json(), where)
        put[tournament_id] = TournamentState(
            start=parse_time(answer["start_at"], where).timestamp(),
            end=parse_time(answer["end_at"], where).timestamp(),
            regions=tuple(answer["regions"]) if answer["regions"] is not None else None,
            max_players=answer["max_players"])
    filler = await new_session(http, server)
    conn = await RawSocket.open(http, server.url, {"token": filler["token"]})
    try:
        reply = await conn.call("tournament:join", {"tournament": FULL})
    finally:
        await conn.close()
    assert reply.get("ok") is True, f"the first join of {FULL}: {reply}"
    put[FULL].entrants.add(filler["player"]["player_id"])
    await asyncio.sleep(max(0.0, put[ENDED].end + 1 - time.time()))
    reply = await request(http, "GET", f"{server.url}/api/v1/tournaments/{ENDED}")
    assert reply.status == 200 and reply.json()["state"] == "ended", f"GET /api/v1/tournaments/{ENDED}: {reply!r}"
    registry.tournaments.update(put)
    return list(put)


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
        # A tournament's board has period `all` only (section 10): its snapshot may hold just that.
        periods = [{"all", "daily", "weekly"}, {"all"}] if payload["room"].startswith("tournament:") \
            else [{"all", "daily", "weekly"}]
        assert isinstance(snap.get("boards"), dict) and set(snap["boards"]) in periods, f"{where}: {snap}"
    elif event == "unwatch":
        assert reply == {"ok": True}, f"{where}: {reply}"
    elif event == "action:start":
        assert set(reply) == {"ok", "challenge"}, f"{where}: {reply}"
        challenge = reply["challenge"]
        assert set(challenge) == {"action_id", "token", "difficulty", "min_ms", "expires_at"}, f"{where}: {reply}"
        assert isinstance(challenge["expires_at"], str) and challenge["expires_at"].endswith("Z"), where
    elif event == "action:complete":
        # (v1.1, section 10) and `tournaments` when the credit counted toward one.
        assert set(reply) - {"tournaments"} == {"ok", "action_id", "points", "duplicate", "score", "achievements"}, \
            f"{where}: {reply}"
        challenge = actors.registry.challenges[payload["token"]]
        state = actors.registry.players[actors.player_id]
        assert reply["points"] == challenge.points, f"{where}: credited {reply['points']}, the action gives " \
                                                    f"{challenge.points}"
        if challenge.acked is None:
            assert reply["duplicate"] is False, f"{where}: a first completion answered as a duplicate: {reply}"
            state.total += challenge.points
            challenge.acked = reply
            assert reply["score"]["total"] == state.total, f"{where}: score {reply['score']}, expected {state.total}"
            check_tournament_credit(reply, state, actors, challenge.points, where)
        else:
            first = challenge.acked
            assert reply["duplicate"] is True, f"{where}: a second completion credited again: {reply}"
            assert {k: v for k, v in reply.items() if k != "duplicate"} == \
                   {k: v for k, v in first.items() if k != "duplicate"}, f"{where}: retry ack {reply} != {first}"
    elif event == "leaderboard:get":
        limit = payload.get("limit", 10) if payload.get("limit") is not None else 10
        named = {param: payload[param] for param in ENDED_PARAMS if payload.get(param) is not None}
        check_board_answer({k: v for k, v in reply.items() if k != "ok"}, where, payload["board"],
                           payload.get("period") or "all", named, limit)
    elif event == "tournament:join":
        assert set(reply) == {"ok", "tournament"}, f"{where}: {reply}"
        tournament_id = payload["tournament"]
        answer = check_tournament(reply["tournament"], where)
        joined = actors.registry.tournaments[tournament_id]
        assert answer["tournament_id"] == tournament_id, f"{where}: {answer}"
        assert answer["state"] in joined.states(time.time()), f"{where}: state {answer['state']!r}"
        joined.entrants.add(actors.player_id)
        assert answer["players"] == len(joined.entrants), \
            f"{where}: {answer['players']} players; {sorted(joined.entrants)} joined it"
        actors.registry.players[actors.player_id].tournaments.setdefault(tournament_id, 0)


def check_tournament_credit(reply: dict, state: PlayerState, actors: Actors, points: int, where: str) -> None:
    """Section 10: a credit by an entrant of a running tournament adds its points there, and the
    ack lists the player's score in each such tournament. With none, the key is absent or empty
    (PROTOCOL.md does not say which)."""
    now = time.time()
    counted = {tid for tid in state.tournaments if actors.registry.tournaments[tid].states(now) == {"running"}}
    for tid in counted:
        state.tournaments[tid] += points
    expected = {tid: state.tournaments[tid] for tid in counted}
    assert reply.get("tournaments", {}) == expected, \
        f"{where}: tournaments {reply.get('tournaments')!r}; the player's running tournaments: {expected}"


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
    viewer = Viewer(role, watched=frozenset(conn.watched)) if role == "spectator" else \
        Viewer(role, actors.player_id, actors.registry.players[actors.player_id].region, actors.guild,
               frozenset(conn.watched))
    allowed = socket_outcomes(event, args, viewer, actors.registry) | also
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
        if event == "watch" and viewer.counts(args[0]["room"]):
            conn.watched.add(args[0]["room"])
        elif event == "unwatch":
            conn.watched.discard(args[0]["room"])

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
