"""Engine.io transports per address (PROTOCOL.md 1, CONNECTIONS_PER_IP, CONNECT_TIMEOUT_S), by raw
handshakes that never open the namespace: the cap counts them, and they are closed in time."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp

from tests.support import open_client

CAP = 40
TIMEOUT_S = 2
POLLING = "/socket.io/?EIO=4&transport=polling"
WEBSOCKET = "/socket.io/?EIO=4&transport=websocket"


async def polling_handshake(http: aiohttp.ClientSession, url: str) -> tuple[int, str | None]:
    """(status, the session's URL when accepted)."""
    async with http.get(url + POLLING) as resp:
        text = await resp.text()
    if resp.status != 200:
        return resp.status, None
    assert text.startswith("0{"), text
    return 200, f"{url}{POLLING}&sid={json.loads(text[1:])['sid']}"


async def websocket_handshake(http: aiohttp.ClientSession, url: str) -> aiohttp.ClientWebSocketResponse | int:
    """An open websocket that got engine.io's OPEN packet, or the handshake's refusal status."""
    try:
        ws = await http.ws_connect(url.replace("http://", "ws://") + WEBSOCKET)
    except aiohttp.WSServerHandshakeError as exc:
        return exc.status
    opened = await ws.receive(timeout=5)
    assert opened.type == aiohttp.WSMsgType.TEXT and opened.data.startswith("0{"), opened
    return ws


async def closed_within(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> bool:
    try:
        async with asyncio.timeout(seconds):
            while True:
                msg = await ws.receive()
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED,
                                aiohttp.WSMsgType.ERROR):
                    return True
    except TimeoutError:
        return False


async def test_never_connecting_transports_are_capped_then_closed(start_app, settings, http):
    """300 transports from one address that never send "40": 60 websockets and 240 long-polling
    handshakes, at once. Past CONNECTIONS_PER_IP each is refused (401) at its handshake; after
    CONNECT_TIMEOUT_S every accepted one is closed and the address may connect again. A client
    that connected in time is never closed."""
    app = await start_app(settings, connections_per_ip=CAP, connect_timeout_s=TIMEOUT_S)
    player = await open_client(app.url)  # in time: one of the CAP, for good
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as burst:
        started = time.monotonic()
        outcomes = await asyncio.gather(*[websocket_handshake(burst, app.url) for _ in range(60)],
                                        *[polling_handshake(burst, app.url) for _ in range(240)])
        took = time.monotonic() - started
        sockets = [o for o in outcomes[:60] if not isinstance(o, int)]
        sessions = [url for status, url in outcomes[60:] if url]
        refused = [o for o in outcomes[:60] if isinstance(o, int)] + [s for s, url in outcomes[60:] if not url]
        assert took < TIMEOUT_S, f"the handshakes took {took:.1f} s, longer than CONNECT_TIMEOUT_S: nothing proved"
        assert len(sockets) + len(sessions) == CAP - 1, (len(sockets), len(sessions))
        assert refused == [401] * (300 - CAP + 1), sorted(set(refused))

        # Closed after CONNECT_TIMEOUT_S: the websockets by the server, the polling sessions gone.
        closed = await asyncio.gather(*(closed_within(ws, TIMEOUT_S + 3) for ws in sockets))
        assert all(closed), f"{closed.count(False)} websockets still open after CONNECT_TIMEOUT_S"
        for session in sessions:
            async with burst.get(session) as resp:
                assert resp.status == 400, await resp.text()
        for ws in sockets:
            await ws.close()

        # The address may open as many again (one place still held by the player).
        again = await asyncio.gather(*(polling_handshake(burst, app.url) for _ in range(CAP)))
        assert sorted(status for status, _ in again) == [200] * (CAP - 1) + [401]

    assert player.sio.connected
    assert (await player.call("leaderboard:get", {"board": "global"}))["ok"]
    await player.sio.disconnect()


async def test_a_client_that_connects_in_time_is_never_closed(start_app, settings, http):
    app = await start_app(settings, connections_per_ip=CAP, connect_timeout_s=1)
    clients = [await open_client(app.url, transports=transports)
               for transports in (["websocket"], ["polling"], ["polling", "websocket"])]
    await asyncio.sleep(2.5)
    for client in clients:
        assert client.sio.connected
        assert (await client.call("leaderboard:get", {"board": "global"}))["ok"]
        await client.sio.eio.disconnect(abort=True)  # not waiting for a polling client's long-poll to end


async def test_a_transport_that_leaves_the_namespace_is_closed_in_time(start_app, settings, http):
    """Sending "41" leaves a transport with no namespace open: it has CONNECT_TIMEOUT_S to open it again."""
    app = await start_app(settings, connections_per_ip=2, connect_timeout_s=1)
    left = await websocket_handshake(http, app.url)
    back = await websocket_handshake(http, app.url)
    assert not isinstance(left, int) and not isinstance(back, int)
    for ws in (left, back):
        await ws.send_str("40")
        assert (await ws.receive(timeout=5)).data.startswith("40{")
        await ws.send_str("41")
    await asyncio.sleep(0.5)
    await back.send_str("40")  # opened again in time: kept
    assert (await back.receive(timeout=5)).data.startswith("40{")
    assert await closed_within(left, 3)
    assert not await closed_within(back, 1.5)
    await back.send_str('421["leaderboard:get",{"board":"global"}]')
    while True:
        msg = await back.receive(timeout=5)
        if msg.data != "2":
            break
    assert msg.data.startswith('431[{"ok":true'), msg
    status, _ = await polling_handshake(http, app.url)  # `left` gave its place back
    assert status == 200
    for ws in (left, back):
        await ws.close()
