"""Packets the protocol does not take (PROTOCOL.md section 1), spoken by hand over raw websockets
and long-polling requests: binary packets (attachments) and binary frames, and packets that
cannot be decoded. Each closes its own connection, answered with nothing, with one log line
and no traceback; memory is never kept for it; every other connection goes on. And Socket.IO's
CORS answers never allow credentials."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import aiohttp
import pytest

from tests.support import open_client

SOCKETS_LOGGER = "app.handlers.sockets"
WS_PATH = "/socket.io/?EIO=4&transport=websocket"
POLLING_PATH = "/socket.io/?EIO=4&transport=polling"
FRAME = 16_000  # under MAX_PAYLOAD_BYTES (16 KiB): each frame is one the server must read
MB = 1 << 20


class Closed(Exception):
    pass


async def open_ws(http: aiohttp.ClientSession, url: str, connect: bool = True) -> aiohttp.ClientWebSocketResponse:
    """A raw engine.io v4 websocket; with `connect`, the namespace opened ("40")."""
    ws = await http.ws_connect(url.replace("http://", "ws://") + WS_PATH, max_msg_size=0)
    opened = await ws.receive(timeout=5)
    assert opened.type == aiohttp.WSMsgType.TEXT and opened.data.startswith("0{"), opened
    if connect:
        await ws.send_str("40")
        connected = await ws.receive(timeout=5)
        assert connected.type == aiohttp.WSMsgType.TEXT and connected.data.startswith("40{"), connected
    return ws


async def closed_by_server(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5) -> list[str]:
    """Read until the server closes the websocket; the text frames it sent meanwhile (pings are
    answered, as a client would). Fails when the connection is still open after `timeout`."""
    frames: list[str] = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                msg = await ws.receive()
                if msg.type == aiohttp.WSMsgType.TEXT:
                    if msg.data == "2":
                        await ws.send_str("3")
                    else:
                        frames.append(msg.data)
                elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED,
                                  aiohttp.WSMsgType.ERROR):
                    return frames
    except TimeoutError:
        raise AssertionError(f"the server kept the connection open; it sent {frames}") from None


async def polling_session(http: aiohttp.ClientSession, url: str) -> str:
    """A raw engine.io v4 long-polling session with the namespace open; its URL."""
    async with http.get(url + POLLING_PATH) as resp:
        opened = await resp.text()
    assert resp.status == 200 and opened.startswith("0{"), opened
    session = f"{url}{POLLING_PATH}&sid={json.loads(opened[1:])['sid']}"
    async with http.post(session, data="40") as resp:
        assert resp.status == 200
    async with http.get(session) as resp:
        assert (await resp.text()).startswith("40{")
    return session


def log_problems(caplog: pytest.LogCaptureFixture, closed: int) -> list[str]:
    """What is wrong with the server's log for `closed` refused connections: one warning each
    from the socket handlers, and no traceback anywhere."""
    problems = [f"{r.name} {r.levelname}: {r.getMessage()} (with a traceback)" for r in caplog.records if r.exc_info]
    problems += [f"{r.name} {r.levelname}: {r.getMessage()}" for r in caplog.records
                 if r.levelno >= logging.ERROR and r.name.startswith(("app", "aiohttp"))]
    ours = [r for r in caplog.records if r.name == SOCKETS_LOGGER and r.levelno == logging.WARNING]
    if len(ours) != closed:
        problems.append(f"{len(ours)} warnings for {closed} closed connections: {[r.getMessage() for r in ours]}")
    return problems


async def assert_serves(url: str) -> None:
    client = await open_client(url)
    try:
        reply = await client.call("leaderboard:get", {"board": "global"})
        assert reply["ok"] is True, reply
    finally:
        await client.sio.disconnect()


# -------------------------------------------------------------------------------------------------
# binary packets and binary frames
# -------------------------------------------------------------------------------------------------

BINARY_HEADERS = [
    '451-["leaderboard:get",{"_placeholder":true,"num":0}]',
    '4511-["leaderboard:get",{"_placeholder":true,"num":0}]',  # with an ack id
    '459999999999-["x",{"_placeholder":true,"num":0}]',  # ten billion attachments announced
    '461-1[{"_placeholder":true,"num":0}]',  # BINARY_ACK
    "45",
    "46",
    '421-["leaderboard:get",{"board":"global"}]',  # an EVENT announcing an attachment
]


@pytest.mark.parametrize("connect", [True, False], ids=["after-40", "before-40"])
async def test_a_binary_packet_header_closes_the_connection_and_nothing_follows(connect, http, app_url, caplog):
    caplog.set_level(logging.INFO)
    bystander = await open_client(app_url)
    for header in BINARY_HEADERS:
        ws = await open_ws(http, app_url, connect=connect)
        await ws.send_str(header)
        for _ in range(3):
            await ws.send_bytes(b"\x00" * FRAME)  # the attachments it announced: never waited for
        await ws.send_str('421["leaderboard:get",{"board":"global"}]')
        frames = await closed_by_server(ws)
        assert not [f for f in frames if f.startswith("43")], (header, frames)
        await ws.close()
    assert not log_problems(caplog, closed=len(BINARY_HEADERS)), log_problems(caplog, len(BINARY_HEADERS))
    assert (await bystander.call("leaderboard:get", {"board": "global"}))["ok"]
    await bystander.sio.disconnect()


@pytest.mark.parametrize("connect", [True, False], ids=["after-40", "before-40"])
async def test_a_binary_frame_with_no_header_closes_the_connection(connect, http, app_url, caplog):
    caplog.set_level(logging.INFO)
    ws = await open_ws(http, app_url, connect=connect)
    await ws.send_bytes(b"\x00\xffbinary")
    await closed_by_server(ws)
    assert not log_problems(caplog, closed=1), log_problems(caplog, 1)
    await assert_serves(app_url)


@pytest.mark.parametrize("body", ["bAAECAw==", '451-["x",{"_placeholder":true,"num":0}]\x1ebAAECAw=='])
async def test_binary_over_long_polling_closes_the_session(body, http, app_url, caplog):
    caplog.set_level(logging.INFO)
    session = await polling_session(http, app_url)
    async with http.post(session, data=body) as resp:
        assert resp.status < 500
    async with http.get(session) as resp:
        assert resp.status == 400, await resp.text()  # the session is gone
    assert not log_problems(caplog, closed=1), log_problems(caplog, 1)
    await assert_serves(app_url)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


async def stream_attachments(http: aiohttp.ClientSession, url: str, budget: int) -> tuple[int, list[str]]:
    """One attacker: connections that each announce ten billion attachments, then send binary
    frames, reading nothing back (so deaf to any close), until `budget` bytes are sent in all;
    whenever the server hangs up, the next connection goes on with the rest. Returns the bytes
    sent and what each connection the server did not close said (closed_by_server)."""
    sent, connections, kept_open = 0, 0, []
    chunk = b"\xab" * FRAME
    while sent < budget:
        connections += 1
        assert connections <= 500, f"{connections} connections for {sent} bytes: the server refuses connections"
        ws = await open_ws(http, url)
        await ws.send_str('459999999999-["leaderboard:get",{"_placeholder":true,"num":0}]')
        try:
            async with asyncio.timeout(60):
                while sent < budget:
                    await ws.send_bytes(chunk)
                    sent += len(chunk)
        except (ConnectionError, aiohttp.ClientError):
            pass  # the server hung up under the send
        except TimeoutError:
            raise AssertionError(f"the server stopped reading after {sent} bytes, without closing") from None
        try:
            await closed_by_server(ws)
        except AssertionError as exc:
            kept_open.append(str(exc))
        await ws.close()
    return sent, kept_open


async def test_streaming_binary_frames_keeps_no_memory_and_the_server_goes_on(instances, http):
    """Twice, 10 attackers at once, each streaming 5 MB of binary frames (100 MB in all) into a
    separate server process over connections that each announce ten billion attachments: the
    server closes every connection at its header (it may hang up before the rest was sent; the
    attacker then goes on over a new one), and its RSS, sampled all along, grows by less than
    30 MB. (Stock python-socketio kept every frame of each connection until it closed: 50 MB a
    wave.)"""
    instance = await instances()
    wave, per_attacker = 10, 5 * MB
    peak = 0

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, rss_bytes(instance.proc.pid))
            await asyncio.sleep(0.02)

    async def one_wave(budget: int) -> tuple[int, list[str]]:
        attackers = await asyncio.gather(*(stream_attachments(http, instance.url, budget) for _ in range(wave)))
        return sum(sent for sent, _ in attackers), [said for _, kept in attackers for said in kept]

    await one_wave(256 * 1024)  # warm-up: the first connections allocate what every later one reuses
    baseline = rss_bytes(instance.proc.pid)
    sampler = asyncio.ensure_future(sample())
    try:
        sent, kept_open = 0, []
        for _ in range(2):
            wave_sent, wave_kept = await one_wave(per_attacker)
            sent, kept_open = sent + wave_sent, kept_open + wave_kept
    finally:
        sampler.cancel()
    growth = (peak - baseline) / MB
    assert sent >= 2 * wave * per_attacker
    assert growth < 30, f"the server's RSS grew by {growth:.0f} MB while {sent / MB:.0f} MB of attachments streamed in"
    assert not kept_open, f"{len(kept_open)} connections that announced attachments were kept open: {kept_open[0]}"
    await assert_serves(instance.url)
    async with http.get(f"{instance.url}/healthz") as resp:
        assert resp.status == 200


# -------------------------------------------------------------------------------------------------
# packets that cannot be decoded
# -------------------------------------------------------------------------------------------------

UNDECODABLE_FRAMES = [
    # Socket.IO level: bad JSON, too deep JSON, an event that is no array or an empty one, an unknown type
    "42garbage", "42[", '42["watch",{"room":', "42", "42null", "42[]", "42{}", '42"watch"', "421[]", "43",
    "42" + "[" * 5000 + "]" * 5000,  # deeper than the JSON decoder's recursion limit
    '42["leaderboard:get",' + "[" * 5000 + "]" * 5000 + "]",
    "421" + "[" * 5000 + "]" * 5000,
    "4", "4x", '48["x"]', "44", '44{"message":"x"}', "4" + "[" * 5000 + "]" * 5000, '4{"a":1}', "4{}", "4[]",
    "4null", "4false", '4""', "4 ",
    "42" + "1" * 200 + '["x"]',  # an ack id too long
    # engine.io level: no engine.io packet at all
    "x", "", "9", "b", "bAAEC", " 42[\"x\"]",
]


async def test_undecodable_packets_close_their_connection_with_one_line_each(played_url, http, caplog):
    caplog.set_level(logging.INFO)
    url, bystander = played_url
    wrong = []
    for frame in UNDECODABLE_FRAMES:
        ws = await open_ws(http, url)
        await ws.send_str(frame)
        await ws.send_str('421["leaderboard:get",{"board":"global"}]')
        try:
            frames = await closed_by_server(ws)
        except AssertionError as exc:
            wrong.append((frame[:30], str(exc)))
        else:
            if [f for f in frames if f.startswith("43")]:
                wrong.append((frame[:30], f"answered after the bad packet: {frames}"))
        await ws.close()
    assert not wrong, wrong
    problems = log_problems(caplog, closed=len(UNDECODABLE_FRAMES))
    assert not problems, "\n".join(problems)
    assert (await bystander.call("leaderboard:get", {"board": "global"}))["ok"]


UNDECODABLE_BODIES = [
    b"42garbage", b"42[", b"42", b"42{}", b"4" + b"[" * 5000 + b"]" * 5000, b"42" + b"[" * 5000 + b"]" * 5000,
    b"xyz", b"\xff\xfe", b"9", b"2", b"0", b"6", b"3\x1e\x1e3", b"3\x1e" * 20 + b"3", b"d=42%5B%5D",
]


async def test_undecodable_polling_bodies_close_their_session_with_one_line_each(played_url, http, caplog):
    caplog.set_level(logging.INFO)
    url, bystander = played_url
    wrong = []
    for body in UNDECODABLE_BODIES:
        session = await polling_session(http, url)
        async with http.post(session, data=body, timeout=aiohttp.ClientTimeout(total=5)) as resp:
            if resp.status >= 500:
                wrong.append((body[:20], resp.status))
        async with http.get(session, timeout=aiohttp.ClientTimeout(total=5)) as resp:
            if resp.status != 400:  # the session is gone
                wrong.append((body[:20], "session kept", resp.status, (await resp.text())[:80]))
    assert not wrong, wrong
    problems = log_problems(caplog, closed=len(UNDECODABLE_BODIES))
    assert not problems, "\n".join(problems)
    assert (await bystander.call("leaderboard:get", {"board": "global"}))["ok"]


async def test_well_formed_packets_in_one_polling_body_are_all_taken(app_url, http):
    """The polling check refuses only what engine.io could not take: a PONG and two events in one body."""
    session = await polling_session(http, app_url)
    body = '3\x1e421["leaderboard:get",{"board":"global"}]\x1e422["nope",{}]'
    async with http.post(session, data=body) as resp:
        assert resp.status == 200
    seen: list[str] = []
    for _ in range(5):
        async with http.get(session) as resp:
            assert resp.status == 200
            seen += (await resp.text()).split("\x1e")
        if {p[:3] for p in seen} >= {"431", "432"}:
            break
    assert any(p.startswith('431[{"ok":true') for p in seen), seen
    assert any(p.startswith('432[{"ok":false,"error":{"code":"invalid_payload"') for p in seen), seen


@pytest.fixture
async def played_url(app_url):
    """The app's URL and a connected bystander, which must go on answering throughout."""
    client = await open_client(app_url)
    yield app_url, client
    await client.sio.disconnect()


# -------------------------------------------------------------------------------------------------
# CORS
# -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "OPTIONS"])
async def test_socketio_cors_never_allows_credentials(method, http, app_url):
    """CORS_ORIGINS=* answers any origin; with credentials allowed too, any site could make
    credentialed requests (python-socketio's default). The token travels in `auth`, not cookies."""
    headers = {"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "GET"}
    async with http.request(method, app_url + POLLING_PATH, headers=headers) as resp:
        await resp.read()
        assert resp.status == 200
        assert resp.headers.get("Access-Control-Allow-Origin") == "https://elsewhere.example"
        assert resp.headers.get("Access-Control-Allow-Credentials") is None, dict(resp.headers)
