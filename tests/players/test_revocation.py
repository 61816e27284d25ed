"""Session revocation and expiry (PROTOCOL.md 3 and 4, v1.1): POST .../sessions/revoke refuses
every session issued before it on every instance and closes the player's open connections within
5 s; a connection whose session expired or was revoked is told so on its next action and closed."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

import pytest
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from app.anticheat.proof import solve
from app.anticheat.tokens import SessionClaims, TokenSigner
from app.clock import now_ms
from app.config import Secret
from app.errors import ProtocolError
from app.players.revocations import KEY, Revocations
from app.players.store import PlayerStore
from app.scores.repository import open_database
from tests.processes import RedisProcess
from tests.support import connect_refusal, create_session, eventually, open_client

API_KEY = "integration-api-key-0123456789"
BEARER = {"Authorization": f"Bearer {API_KEY}"}


async def revoke(http, url: str, player_id: str, headers: dict | None = BEARER, **kwargs) -> tuple[int, dict]:
    async with http.post(f"{url}/api/v1/players/{player_id}/sessions/revoke", headers=headers or {}, **kwargs) as resp:
        return resp.status, await resp.json()


def parse_iso(text: str) -> int:
    assert text.endswith("Z"), text
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


# ----------------------------------------------------------------------------- on real servers


async def test_revoke_closes_the_players_connections_on_every_instance(instances, http):
    a = await instances(API_KEY=API_KEY)
    b = await instances(API_KEY=API_KEY)
    session = await create_session(http, a.url)
    pid, token = session["player"]["player_id"], session["token"]
    on_a, on_b = await open_client(a.url, token), await open_client(b.url, token)
    bystander = await create_session(http, b.url)
    other = await open_client(b.url, bystander["token"])
    try:
        for client in (on_a, on_b):
            assert (await client.call("action:start", {"action": "quick"}))["ok"]

        started = asyncio.get_running_loop().time()
        before_ms = now_ms()
        status, body = await revoke(http, b.url, pid)
        assert status == 200, body
        assert set(body) == {"player_id", "revoked_before"} and body["player_id"] == pid
        assert before_ms - 1000 <= parse_iso(body["revoked_before"]) <= now_ms() + 1000

        async def both_closed() -> None:
            assert not on_a.sio.connected and not on_b.sio.connected

        await eventually(both_closed, timeout=5.0)
        assert asyncio.get_running_loop().time() - started < 5.0
        # Only that player's connections.
        assert other.sio.connected and (await other.call("action:start", {"action": "quick"}))["ok"]

        # The old token is refused by every instance from then on.
        for url in (a.url, b.url):
            assert await connect_refusal(url, {"token": token}) == {"message": "token_invalid"}

        # A new session works, on both.
        body = {"player_id": pid, "name": pid, "region": "eu", "guest_key": session["guest_key"]}
        async with http.post(f"{a.url}/api/v1/sessions", json=body) as resp:
            assert resp.status == 201, await resp.text()
            fresh = (await resp.json())["token"]
        for url in (a.url, b.url):
            client = await open_client(url, fresh)
            try:
                _, ack = await client.play("quick")
                assert ack["ok"], ack
            finally:
                await client.sio.disconnect()
    finally:
        for client in (on_a, on_b, other):
            if client.sio.connected:
                await client.sio.disconnect()


async def test_revoke_route_needs_the_api_key_and_a_player(start_app, settings, http, new_session):
    app = await start_app(settings, api_key=Secret(API_KEY))
    session = await new_session(url=app.url)
    pid = session["player"]["player_id"]
    for headers in (None, {"Authorization": "Bearer wrong-key-0123456789"}, {"Authorization": API_KEY}):
        status, body = await revoke(http, app.url, pid, headers=headers)
        assert status == 401 and body["error"]["code"] == "unauthorized", (headers, body)
    status, body = await revoke(http, app.url, "nobody")
    assert status == 404 and body["error"]["code"] == "not_found"
    for junk in (b"[]", b"{\"all\": true}", b"garbage"):
        status, body = await revoke(http, app.url, pid, data=junk)
        assert status == 400 and body["error"]["code"] == "invalid_payload", (junk, body)
    # A refusal revoked nothing: the session still connects.
    client = await open_client(app.url, session["token"])
    await client.sio.disconnect()

    status, first = await revoke(http, app.url, pid, json={})
    assert status == 200, first
    await asyncio.sleep(0.01)
    status, second = await revoke(http, app.url, pid)
    assert status == 200 and parse_iso(second["revoked_before"]) > parse_iso(first["revoked_before"])
    async with http.get(f"{app.url}/api/v1/players/{pid}/sessions/revoke", headers=BEARER) as resp:
        assert resp.status == 405


async def test_revoke_without_an_api_key_configured_is_unauthorized(http, app_url, new_session):
    session = await new_session()
    status, body = await revoke(http, app_url, session["player"]["player_id"])
    assert status == 401 and body["error"]["code"] == "unauthorized"


async def test_expired_session_on_an_open_connection_is_told_on_its_next_action(start_app, settings, new_session):
    """SESSION_TTL_S is at least 60 s: the test signs a token, with the server's key, issued
    almost that long ago, rather than wait."""
    app = await start_app(settings)
    pid = (await new_session(url=app.url))["player"]["player_id"]
    signer = TokenSigner(settings.secret_keys, settings.session_ttl_s)
    issued = now_ms() - settings.session_ttl_s * 1000 + 1500
    token = signer.session_token(SessionClaims(pid, pid, "eu", None, issued_ms=issued))
    starting, completing = await open_client(app.url, token), await open_client(app.url, token)
    try:
        started = await completing.call("action:start", {"action": "quick"})
        assert started["ok"], started
        await asyncio.sleep(max(0.0, (issued + settings.session_ttl_s * 1000 - now_ms()) / 1000) + 0.1)

        challenge = started["challenge"]
        ack = await completing.call("action:complete",
                                    {"token": challenge["token"], "proof": solve(challenge["token"], 4)})
        assert ack["ok"] is False and ack["error"]["code"] == "token_expired", ack
        ack = await starting.call("action:start", {"action": "quick"})
        assert ack["ok"] is False and ack["error"]["code"] == "token_expired", ack

        async def closed() -> None:
            assert not starting.sio.connected and not completing.sio.connected

        await eventually(closed, timeout=2.0)
        assert await connect_refusal(app.url, {"token": token}) == {"message": "token_expired"}
    finally:
        for client in (starting, completing):
            if client.sio.connected:
                await client.sio.disconnect()


# ----------------------------------------------------------------------------- the poller itself


@pytest.fixture
async def stores(settings, redis_proc, mongo_proc):
    """A player store on a database of its own, and the tests' Redis (flushed by `settings`)."""
    client, db = open_database(mongo_proc.url, f"rv_{uuid.uuid4().hex[:10]}", 5000)
    r = redis.asyncio.Redis.from_url(redis_proc.url)
    yield PlayerStore(db), r
    await r.aclose()
    await client.close()


class Clock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def claims(pid: str, issued_ms: int) -> SessionClaims:
    return SessionClaims(pid, pid, "eu", None, issued_ms)


async def test_every_instance_learns_a_revocation_at_its_next_poll_and_keeps_it_bounded(stores):
    store, r = stores
    ttl_s = 60
    clock = Clock(now_ms())
    for pid in ("ann", "bob"):
        assert await store.create(pid, pid, "eu", None, clock.ms, None)
    closed: dict[str, list] = {"here": [], "there": []}

    def recorder(where: str):
        async def on_revoked(pid: str, before: int) -> None:
            closed[where].append((pid, before))
        return on_revoked

    here = Revocations(r, store, ttl_s, on_revoked=recorder("here"), clock=clock)
    there = Revocations(r, store, ttl_s, on_revoked=recorder("there"), clock=clock)
    await there.poll_once()
    old, new = claims("ann", clock.ms - 1000), claims("ann", clock.ms)

    at = await here.revoke("ann")
    assert at == clock.ms and await store.revoked_before("ann") == at
    assert here.revoked(old) and not here.revoked(new)  # at once where it was made
    assert closed["here"] == [("ann", at)]
    assert not there.revoked(old) and closed["there"] == []  # elsewhere: at the next poll
    clock.ms += 1000
    assert await there.poll_once() == 1
    assert there.revoked(old) and not there.revoked(new) and not there.revoked(claims("bob", 0))
    assert closed["there"] == [("ann", at)]
    assert await there.poll_once() == 0 and closed["there"] == [("ann", at)]  # closed once, not every poll

    # A connect on an instance that has not polled yet reads Redis.
    fresh = Revocations(r, store, ttl_s, clock=clock)
    with pytest.raises(ProtocolError) as refused:
        await fresh.refuse_if_revoked(old)
    assert refused.value.code == "token_invalid"
    await fresh.refuse_if_revoked(new)
    await fresh.refuse_if_revoked(claims("bob", 0))

    # An instance whose clock runs behind still has its revocations seen.
    behind = Revocations(r, store, ttl_s, clock=Clock(clock.ms - 10_000))
    bob_at = await behind.revoke("bob")
    clock.ms += 1000
    assert await there.poll_once() == 1 and there.revoked(claims("bob", bob_at - 1))

    with pytest.raises(ProtocolError) as unknown:
        await here.revoke("nobody")
    assert unknown.value.code == "not_found"

    # Past SESSION_TTL_S a revocation refuses nothing (every token before it has expired):
    # Redis and each instance drop it.
    assert await r.zcard(KEY) == 2
    clock.ms += ttl_s * 1000 + 1
    assert await there.poll_once() == 0
    assert await r.zcard(KEY) == 0
    assert not there.revoked(claims("ann", 0)) and not there.revoked(claims("bob", 0))


async def test_connect_check_reads_mongodb_while_redis_is_away(stores):
    """A Redis of its own, stopped: connects read MongoDB; a revocation made meanwhile is stored,
    known here, answered unavailable, and announced by the first poll once Redis is back."""
    store, _ = stores
    assert await store.create("cy", "cy", "eu", None, now_ms(), None)
    await store.revoke_sessions("cy", now_ms())
    own = RedisProcess()
    r = redis.asyncio.Redis.from_url(own.url, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    try:
        revocations = Revocations(r, store, 60)
        own.stop()
        with pytest.raises(ProtocolError) as refused:
            await revocations.refuse_if_revoked(claims("cy", now_ms() - 5000))
        assert refused.value.code == "token_invalid"
        await revocations.refuse_if_revoked(claims("cy", now_ms() + 1))

        issued = now_ms()
        await asyncio.sleep(0.01)
        with pytest.raises(ProtocolError) as unannounced:
            await revocations.revoke("cy")
        assert unannounced.value.code == "unavailable"
        assert revocations.revoked(claims("cy", issued))
        stored = await store.revoked_before("cy")
        assert stored > issued

        own.start()  # empty, on the same port

        async def announced() -> None:
            try:
                await revocations.poll_once()  # what the instance's poller does each second
                assert await r.zscore(KEY, "cy") == stored
            except RedisError as exc:  # a pooled connection from before the restart
                raise AssertionError(exc) from exc

        await eventually(announced, timeout=5)
    finally:
        await r.aclose()
        own.stop()
