"""The abuse limits on a running server: event floods, connections and sessions per address."""

from __future__ import annotations

import asyncio

import pytest
import socketio

from app.config import Secret

KEY = "operator-key-0123456789"


async def test_a_flooding_socket_is_told_then_disconnected_and_others_go_on(start_app, settings, new_session, http):
    app = await start_app(settings, socket_events_per_s=5, socket_event_burst=5)
    flooder = socketio.AsyncClient(reconnection=False)
    reasons: list[str] = []
    flooder.on("disconnect", lambda reason=None: reasons.append(reason))
    await flooder.connect(app.url, transports=["websocket"])
    bystander = socketio.AsyncClient(reconnection=False)
    await bystander.connect(app.url, transports=["websocket"])
    try:
        get = {"board": "global", "period": "all"}
        replies = await asyncio.gather(*(flooder.call("leaderboard:get", get, timeout=5) for _ in range(40)),
                                       return_exceptions=True)
        acks = [r for r in replies if isinstance(r, dict)]
        limited = [r for r in acks if not r["ok"]]
        assert any(r["ok"] for r in acks)
        assert limited and all(r["error"]["code"] == "rate_limited" and r["error"]["retry_after_ms"] > 0
                               for r in limited), acks
        assert any("disconnecting" in r["error"]["message"] for r in limited), limited

        async def gone() -> None:
            while flooder.connected:
                await asyncio.sleep(0.05)

        await asyncio.wait_for(gone(), 5)
        assert reasons == [flooder.reason.SERVER_DISCONNECT]  # told to stay away: no reconnect
        assert (await bystander.call("leaderboard:get", get))["ok"]
    finally:
        for client in (flooder, bystander):
            if client.connected:
                await client.disconnect()


async def test_a_client_that_waits_as_told_is_never_disconnected(start_app, settings):
    app = await start_app(settings, socket_events_per_s=20, socket_event_burst=3)
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(app.url, transports=["websocket"])
    try:
        ok = limited = 0
        for _ in range(30):
            reply = await client.call("leaderboard:get", {"board": "global", "period": "all"})
            if reply["ok"]:
                ok += 1
            else:
                assert reply["error"]["code"] == "rate_limited"
                limited += 1
                await asyncio.sleep(reply["error"]["retry_after_ms"] / 1000)
        assert ok == 30 - limited and client.connected
    finally:
        await client.disconnect()


async def test_connections_per_address_are_capped(start_app, settings):
    app = await start_app(settings, connections_per_ip=2)
    clients = [socketio.AsyncClient(reconnection=False) for _ in range(3)]
    try:
        for client in clients[:2]:
            await client.connect(app.url, transports=["websocket"])
        seen: list = []
        clients[2].on("connect_error", lambda data: seen.append(data))
        with pytest.raises(socketio.exceptions.ConnectionError):
            await clients[2].connect(app.url, transports=["websocket"])
        await clients[2].eio.disconnect()
        assert seen == [{"message": "rate_limited"}], seen
        await clients[0].disconnect()
        await asyncio.sleep(0.2)
        await clients[2].connect(app.url, transports=["polling"])
        assert clients[2].connected
    finally:
        for client in clients:
            if client.connected:
                await client.eio.disconnect(abort=True)


async def post_session(http, url: str, player_id: str, headers: dict | None = None) -> tuple[int, dict, dict]:
    body = {"player_id": player_id, "name": player_id, "region": "eu"}
    async with http.post(f"{url}/api/v1/sessions", json=body, headers=headers or {}) as resp:
        return resp.status, dict(resp.headers), await resp.json()


async def test_guest_sessions_per_address_are_paced_and_the_account_service_is_not(start_app, settings, http):
    app = await start_app(settings, sessions_per_ip_per_minute=2, api_key=Secret(KEY))
    assert [(await post_session(http, app.url, f"g{i}"))[0] for i in range(2)] == [201, 201]
    status, headers, body = await post_session(http, app.url, "g2")
    assert status == 429 and body["error"]["code"] == "rate_limited", body
    assert 0 < body["error"]["retry_after_ms"] <= 30_000 and int(headers["Retry-After"]) >= 1
    # A proxy's X-Forwarded-For is ignored unless TRUST_PROXY is set.
    assert (await post_session(http, app.url, "g3", {"X-Forwarded-For": "203.0.113.9"}))[0] == 429
    # The game's account service mints sessions for all its players from one address.
    auth = {"Authorization": f"Bearer {KEY}"}
    assert [(await post_session(http, app.url, f"a{i}", auth))[0] for i in range(5)] == [201] * 5


async def test_behind_a_trusted_proxy_each_forwarded_address_has_its_own_limit(start_app, settings, http):
    app = await start_app(settings, sessions_per_ip_per_minute=1, trust_proxy=True)
    first = {"X-Forwarded-For": "203.0.113.1, 10.0.0.2"}
    assert (await post_session(http, app.url, "t0", first))[0] == 201
    assert (await post_session(http, app.url, "t1", first))[0] == 429
    assert (await post_session(http, app.url, "t2", {"X-Forwarded-For": "203.0.113.2"}))[0] == 201
