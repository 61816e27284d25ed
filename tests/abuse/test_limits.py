"""The abuse limits on a running server: event floods, connections and sessions per address."""

from __future__ import annotations

import asyncio
from ipaddress import ip_network

import pytest
import socketio
from multidict import CIMultiDict

from app.config import Secret
from tests.support import eventually

KEY = "operator-key-0123456789"


async def test_a_flooding_socket_is_told_then_disconnected_and_others_go_on(start_app, settings, new_session, http):
    app = await start_app(settings, socket_events_per_s=5, socket_event_burst=5)
    flooder = socketio.AsyncClient(reconnection=False)
    reasons: list[str | None] = []
    gone = asyncio.Event()

    def disconnected(reason: str | None = None) -> None:
        reasons.append(reason)
        gone.set()

    flooder.on("disconnect", disconnected)
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

        await asyncio.wait_for(gone.wait(), 5)
        assert not flooder.connected
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
    """CONNECTIONS_PER_IP counts transports: one past it is refused at the engine.io handshake
    (401, before any Socket.IO connect), and a closed one frees its place."""
    app = await start_app(settings, connections_per_ip=2)
    clients = [socketio.AsyncClient(reconnection=False) for _ in range(4)]
    try:
        for client in clients[:2]:
            await client.connect(app.url, transports=["websocket"])
        with pytest.raises(socketio.exceptions.ConnectionError):
            await clients[2].connect(app.url, transports=["websocket"])
        seen: list = []
        clients[3].on("connect_error", lambda data: seen.append(data))
        with pytest.raises(socketio.exceptions.ConnectionError):
            await clients[3].connect(app.url, transports=["polling"])
        assert seen == [{"message": "rate_limited"}], seen  # the 401's body, as python-socketio hands it on
        assert not clients[2].connected and not clients[3].connected
        await clients[0].disconnect()

        async def reconnects() -> None:
            try:
                await clients[2].connect(app.url, transports=["polling"])
            except socketio.exceptions.ConnectionError as exc:
                raise AssertionError("still refused") from exc

        await eventually(reconnects, timeout=5)
        assert clients[2].connected and (await clients[2].call("leaderboard:get", {"board": "global"}))["ok"]
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
    # X-Forwarded-For is ignored unless the request comes from one of TRUSTED_PROXIES.
    assert (await post_session(http, app.url, "g3", {"X-Forwarded-For": "203.0.113.9"}))[0] == 429
    # The game's account service mints sessions for all its players from one address.
    auth = {"Authorization": f"Bearer {KEY}"}
    assert [(await post_session(http, app.url, f"a{i}", auth))[0] for i in range(5)] == [201] * 5


LOCAL = (ip_network("127.0.0.1/32"),)  # the tests' requests come from 127.0.0.1: "the proxy"


async def test_a_forged_forwarded_for_from_a_client_that_is_no_proxy_is_ignored(start_app, settings, http):
    app = await start_app(settings, sessions_per_ip_per_minute=1, trusted_proxies=(ip_network("10.0.0.0/8"),))
    assert (await post_session(http, app.url, "f0", {"X-Forwarded-For": "203.0.113.1"}))[0] == 201
    for forged in ("203.0.113.2", "10.0.0.5", "203.0.113.3, 10.0.0.5"):
        status, _, body = await post_session(http, app.url, "f1", {"X-Forwarded-For": forged})
        assert status == 429 and body["error"]["code"] == "rate_limited", (forged, body)


async def test_behind_a_trusted_proxy_the_right_most_untrusted_address_is_counted(start_app, settings, http):
    """The proxy appends the address it saw; what the client wrote to the left of it chooses nothing."""
    app = await start_app(settings, sessions_per_ip_per_minute=1, trusted_proxies=LOCAL)
    assert (await post_session(http, app.url, "t0", {"X-Forwarded-For": "192.0.2.1, 203.0.113.1"}))[0] == 201
    for forged in ("192.0.2.2, 203.0.113.1", "198.51.100.9, 203.0.113.1", "203.0.113.1, 127.0.0.1"):
        status, _, body = await post_session(http, app.url, "t1", {"X-Forwarded-For": forged})
        assert status == 429 and body["error"]["code"] == "rate_limited", (forged, body)
    # the forged line first, then the proxy's own
    two_lines = CIMultiDict([("X-Forwarded-For", "192.0.2.3"), ("X-Forwarded-For", "203.0.113.1")])
    assert (await post_session(http, app.url, "t2", two_lines))[0] == 429
    # another client behind the proxy has a limit of its own, and so has the proxy itself
    assert (await post_session(http, app.url, "t3", {"X-Forwarded-For": "192.0.2.1, 203.0.113.2"}))[0] == 201
    assert (await post_session(http, app.url, "t4"))[0] == 201
    assert (await post_session(http, app.url, "t5"))[0] == 429


async def test_behind_a_trusted_proxy_transports_count_the_forwarded_address(start_app, settings, http):
    app = await start_app(settings, connections_per_ip=1, trusted_proxies=LOCAL)
    url = f"{app.url}/socket.io/?EIO=4&transport=polling"

    async def handshake(forwarded_for: str) -> int:
        async with http.get(url, headers={"X-Forwarded-For": forwarded_for}) as resp:
            await resp.read()
            return resp.status

    assert await handshake("192.0.2.1, 203.0.113.1") == 200
    assert await handshake("192.0.2.2, 203.0.113.1") == 401  # the forged entry changes nothing
    assert await handshake("203.0.113.2") == 200
