"""What an idle connection costs the server, and that engine.io's lifecycle holds with the leaner
sessions (app/engine.py): PINGs from the shared timer, a client that stops answering them is
closed, a client that says CLOSE and keeps its websocket open is closed too, and long-polling
still upgrades to a websocket. Spoken by hand over raw websockets where the client must hold no
tasks of its own."""

from __future__ import annotations

import asyncio

import aiohttp
import redis.asyncio as aioredis
import socketio

from app.engine import LeanSocket
from app.server import SIO
from tests.handlers.test_packets import open_ws
from tests.support import eventually

IDLE = 20
PING_INTERVAL_S = 0.3
PING_TIMEOUT_S = 0.5


async def next_text(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5) -> str | None:
    """The next text frame, or None once the server closed the websocket."""
    msg = await ws.receive(timeout=timeout)
    if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
        return None
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return msg.data


async def closed_within(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> bool:
    """Whether the server closes the websocket within `seconds`, whatever it sends meanwhile."""
    try:
        async with asyncio.timeout(seconds):
            while await next_text(ws, timeout=seconds) is not None:
                pass
            return True
    except TimeoutError:
        return False


async def test_an_idle_websocket_costs_the_server_two_tasks(start_app, settings, http) -> None:
    """aiohttp's two (its connection and its request, in which engine.io's reader runs): no writer
    waiting on the queue, no task sleeping until the next PING, none inside a wait_for."""
    app = await start_app(settings)
    sio = app.app[SIO]
    first = await open_ws(http, app.url)  # starts what every session shares (engine.io's service task)
    before = len(asyncio.all_tasks())
    sockets = [first] + [await open_ws(http, app.url) for _ in range(IDLE)]
    try:
        await asyncio.sleep(0.2)
        per_connection = (len(asyncio.all_tasks()) - before) / IDLE
        assert per_connection <= 2, per_connection
        assert all(isinstance(s, LeanSocket) for s in sio.eio.sockets.values())
        assert len(sio.eio.pinger) == IDLE + 1  # every session's next PING, on one timer
        # Each is still a live connection: it answers an event.
        for ws in sockets[:3]:
            await ws.send_str('420["leaderboard:get",{"board":"global"}]')
            assert (await next_text(ws) or "").startswith("430"), "no ack"
    finally:
        for ws in sockets:
            await ws.close()


async def test_pings_come_on_time_and_a_client_that_stops_answering_is_closed(start_app, settings, http) -> None:
    app = await start_app(settings)
    eio = app.app[SIO].eio
    eio.ping_interval, eio.ping_timeout = PING_INTERVAL_S, PING_TIMEOUT_S
    ws = await open_ws(http, app.url)
    try:
        for _ in range(3):  # each PONG schedules the next PING
            assert await next_text(ws, timeout=PING_INTERVAL_S + 2) == "2"
            await ws.send_str("3")
        assert await next_text(ws, timeout=PING_INTERVAL_S + 2) == "2"
        # No PONG from here: engine.io's service task finds the ping timeout, closes the session,
        # and the server closes the websocket within the ping timeout after that.
        assert await closed_within(ws, 4 * PING_TIMEOUT_S + 2), "still open after the ping timeout"
        await eventually(lambda: _no_sessions(eio))
    finally:
        await ws.close()


async def test_a_client_that_says_close_and_keeps_its_websocket_open_is_closed(start_app, settings, http) -> None:
    """engine.io's CLOSE packet ends the session at once (its address counts one less); the
    websocket the client keeps open is closed by the server within the ping timeout."""
    app = await start_app(settings, connections_per_ip=1)
    eio = app.app[SIO].eio
    eio.ping_timeout = PING_TIMEOUT_S
    ws = await open_ws(http, app.url)
    try:
        await ws.send_str("1")
        again = await open_ws(http, app.url)  # the only place at this address is free again
        await again.close()
        assert await closed_within(ws, PING_TIMEOUT_S + 2), "the websocket stayed open"
    finally:
        await ws.close()


async def test_long_polling_upgrades_to_a_websocket_and_goes_on(start_app, settings) -> None:
    app = await start_app(settings)
    sio = app.app[SIO]
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(app.url, transports=["polling", "websocket"], wait_timeout=10)
    try:
        async def upgraded() -> None:
            assert client.transport() == "websocket"
            assert [s.upgraded for s in sio.eio.sockets.values()] == [True]

        await eventually(upgraded)
        for _ in range(3):
            assert (await client.call("leaderboard:get", {"board": "global"}, timeout=5))["ok"]
    finally:
        await client.disconnect()
    await eventually(lambda: _no_sessions(sio.eio))


async def _no_sessions(eio) -> None:
    assert not eio.sockets, list(eio.sockets)


async def test_a_burst_of_watches_of_one_room_shares_its_snapshot_reads(start_app, settings, redis_proc) -> None:
    """Each watch is answered with a snapshot read after it joined the room, but those that joined
    while a read was in flight share the next one: 40 at once cost a few reads, not 40."""
    app = await start_app(settings)
    clients = [socketio.AsyncClient(reconnection=False) for _ in range(40)]
    for client in clients:
        await client.connect(app.url, transports=["websocket"], wait_timeout=10)
    redis = aioredis.Redis.from_url(redis_proc.url)
    try:
        before = await _calls(redis, "hgetall")
        acks = await asyncio.gather(*(c.call("watch", {"room": "region:eu"}, timeout=10) for c in clients))
        reads = await _calls(redis, "hgetall") - before
        assert all(ack["ok"] and ack["snapshot"]["room"] == "region:eu" for ack in acks), acks
        periods = len(acks[0]["snapshot"]["boards"])  # one HGETALL per period and read
        assert reads <= 10 * periods, f"{reads / periods:.0f} snapshot reads for 40 watches"
    finally:
        await redis.aclose()
        for client in clients:
            await client.disconnect()


async def _calls(redis: aioredis.Redis, command: str) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))
