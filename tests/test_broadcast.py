"""The broadcast fast path (app/broadcast.py), with real servers and clients: a room emit framed
once and written to every websocket watcher, on one instance and on two; polling watchers on
engine.io's path; each connection's order kept with its acks; a watcher that stops reading
skipped (PROTOCOL.md 6), then back through a fresh snapshot; the server's memory bounded with
200 of them."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import socket
import struct
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import WSMsgType
from aiohttp._websocket.writer import WebSocketWriter
from aiohttp.base_protocol import BaseProtocol

from app.broadcast import MAX_BUFFERED_BYTES, BroadcastManager, text_frame
from app.fanout import RedisFanout
from app.server import SIO
from tests.processes import Running
from tests.support import Client, Watcher, create_session, eventually, open_client

ROOM = "region:eu"


# ---------------------------------------------------------------- the frame


class _Collected:
    """What aiohttp's writer writes, kept (the transport of a connection that reads everything)."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data

    def is_closing(self) -> bool:
        return False


@pytest.mark.parametrize("size", [0, 1, 2, 125, 126, 127, 65535, 65536, 200_000])
async def test_the_frame_is_the_one_aiohttp_sends_for_the_same_text(size: int) -> None:
    text = "é" + "x" * (size - 2) if size >= 2 else "x" * size  # `size` bytes in UTF-8, not all ASCII
    payload = text.encode("utf-8")
    assert len(payload) == size
    sent = _Collected()
    writer = WebSocketWriter(BaseProtocol(asyncio.get_running_loop()), sent)  # type: ignore[arg-type]
    await writer.send_frame(payload, WSMsgType.TEXT)
    assert text_frame(payload) == bytes(sent.data)


# ---------------------------------------------------------------- a websocket client on a plain socket


class RawWatcher:
    """A Socket.IO client over a websocket on a plain socket, that reads only when told to, and
    then frame by frame in wire order (engine.io PINGs answered on the way).

    `small_buffers`: a small receive buffer and segment size. On loopback the server's kernel
    otherwise buffers megabytes for a client that stops reading (64 KiB segments grow its send
    buffer to 4 MB) before anything waits in the server process."""

    def __init__(self, sock: socket.socket, rest: bytes) -> None:
        self._sock = sock
        self._buf = bytearray(rest)
        self._loop = asyncio.get_running_loop()
        self._ids = itertools.count(1)
        self.bytes_read = 0
        self.received: list[tuple[str, Any, Any]] = []  # ("event", name, data) / ("ack", id, reply), wire order

    @classmethod
    async def open(cls, url: str, small_buffers: bool = False) -> RawWatcher:
        where = urlsplit(url)
        host, port = where.hostname or "127.0.0.1", where.port or 80
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if small_buffers:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
        sock.setblocking(False)
        await asyncio.wait_for(loop.sock_connect(sock, (host, port)), 10)
        key = base64.b64encode(os.urandom(16)).decode()
        await loop.sock_sendall(sock, (
            f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await asyncio.wait_for(loop.sock_recv(sock, 4096), 10)
            assert chunk, f"closed during the handshake: {head!r}"
            head += chunk
        head, _, rest = head.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        watcher = cls(sock, rest)
        assert (await watcher.message()).startswith("0")  # engine.io OPEN
        await watcher.send("40")  # Socket.IO CONNECT to "/"
        assert (await watcher.message()).startswith("40")
        return watcher

    def close(self) -> None:
        self._sock.close()

    async def send(self, text: str) -> None:
        payload = text.encode()
        mask = os.urandom(4)
        n = len(payload)
        header = struct.pack("!BB", 0x81, 0x80 | n) if n < 126 else struct.pack("!BBH", 0x81, 0x80 | 126, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        await self._loop.sock_sendall(self._sock, header + mask + masked)

    def _frame(self) -> str | None:
        buf = self._buf
        if len(buf) < 2:
            return None
        length, offset = buf[1] & 0x7F, 2
        if length == 126:
            if len(buf) < 4:
                return None
            length, offset = struct.unpack_from("!H", buf, 2)[0], 4
        elif length == 127:
            if len(buf) < 10:
                return None
            length, offset = struct.unpack_from("!Q", buf, 2)[0], 10
        if len(buf) < offset + length:
            return None
        first, payload = buf[0], bytes(buf[offset:offset + length])
        del buf[:offset + length]
        if first & 0x0F == 0x8:
            raise ConnectionError("the server closed the websocket")
        assert first == 0x81, f"not a final, uncompressed text frame: {first:#x}"
        return payload.decode("utf-8")

    async def message(self, timeout: float | None = 10) -> str:
        """The next engine.io packet's text."""
        while True:
            text = self._frame()
            if text is None:
                chunk = await asyncio.wait_for(self._loop.sock_recv(self._sock, 65536), timeout)
                if not chunk:
                    raise ConnectionError("the server closed the connection")
                self.bytes_read += len(chunk)
                self._buf += chunk
            elif text == "2":
                await self.send("3")  # engine.io PONG
            else:
                return text

    async def packet(self, timeout: float | None = 10) -> tuple[str, Any, Any]:
        """The next Socket.IO EVENT or ACK, also kept in `received`."""
        while True:
            text = await self.message(timeout)
            assert text[:1] == "4", text
            kind, body = text[1:2], text[2:]
            ident, bracket, data = body.partition("[")  # an id, if any, before the JSON array
            if kind == "2":
                name, *args = json.loads(bracket + data)
                got: tuple[str, Any, Any] = ("event", name, args[0] if args else None)
            elif kind == "3":
                got = ("ack", int(ident), json.loads(bracket + data)[0])
            else:
                continue
            self.received.append(got)
            return got

    async def emit(self, event: str, data: object) -> int:
        """Send an event asking for an ack; its ack id."""
        ident = next(self._ids)
        await self.send(f"42{ident}" + json.dumps([event, data]))
        return ident

    async def watch(self, room: str) -> dict:
        """`watch` and read up to its ack; the snapshot."""
        ident = await self.emit("watch", {"room": room})
        while True:
            kind, key, value = await self.packet()
            if kind == "ack" and key == ident:
                assert value["ok"], value
                return value["snapshot"]

    def deltas(self) -> list[dict]:
        return [data for kind, name, data in self.received if kind == "event" and name == "leaderboard:delta"]

    def acks(self) -> set[int]:
        return {key for kind, key, _ in self.received if kind == "ack"}


class Follower:
    """A watcher as PROTOCOL.md section 6 describes one, on a RawWatcher: it applies each delta
    to its snapshot and, at a seq gap, calls `watch` again and goes on from the new snapshot
    (deltas read while that call is out are kept and applied after it)."""

    def __init__(self, raw: RawWatcher, room: str, snapshot: dict, top_n: int) -> None:
        self.raw, self.room, self.top_n = raw, room, top_n
        self.seq, self.boards = snapshot["seq"], snapshot["boards"]
        self.gaps = 0
        self.applied: list[int] = []  # seqs applied, in order
        self.applied_after_rewatch: list[int] = []
        self._rewatch: int | None = None  # the ack id of the `watch` out
        self._held: list[dict] = []

    async def step(self, timeout: float | None = 10) -> None:
        kind, key, value = await self.raw.packet(timeout)
        if kind == "ack" and key == self._rewatch:
            self._rewatch = None
            snapshot = value["snapshot"]
            self.seq, self.boards = snapshot["seq"], snapshot["boards"]
            held, self._held = self._held, []
            for delta in held:
                await self._delta(delta)
        elif kind == "event" and key == "leaderboard:delta" and value["room"] == self.room:
            await self._delta(value)

    async def _delta(self, delta: dict) -> None:
        if self._rewatch is not None:
            self._held.append(delta)
        elif delta["seq"] <= self.seq:
            pass
        elif delta["seq"] != self.seq + 1:
            self.gaps += 1
            self._held = []
            self._rewatch = await self.raw.emit("watch", {"room": self.room})
        else:
            apply_delta(self.boards, delta, self.top_n)
            self.seq = delta["seq"]
            self.applied.append(delta["seq"])
            if self.gaps:
                self.applied_after_rewatch.append(delta["seq"])


def ignore_ack(*args: object) -> None:
    pass


def apply_delta(boards: dict[str, list[dict]], delta: dict, top_n: int) -> None:
    """A client's board after a delta (PROTOCOL.md 6): its row replaced at each rank given."""
    for period in delta.get("reset", []):
        boards[period] = []
    for period, rows in delta["boards"].items():
        by_rank = {row["rank"]: row for row in boards.get(period, [])}
        by_rank.update({row["rank"]: row for row in rows})
        boards[period] = [by_rank[rank] for rank in sorted(by_rank) if rank <= top_n]


# ---------------------------------------------------------------- helpers


class Opened:
    """The clients a test opens, closed at its end however it ends."""

    def __init__(self) -> None:
        self._raws: list[RawWatcher] = []
        self._clients: list[Client] = []
        self._watchers: list[Watcher] = []

    async def raw(self, url: str, small_buffers: bool = False) -> RawWatcher:
        raw = await RawWatcher.open(url, small_buffers)
        self._raws.append(raw)
        return raw

    async def client(self, url: str, token: str | None = None, transports: list[str] | None = None) -> Client:
        client = await open_client(url, token, transports)
        self._clients.append(client)
        return client

    async def watcher(self, url: str, transports: str, rooms: list[str], top_n: int = 10) -> Watcher:
        watcher = await Watcher.start(url, transports, rooms, top_n)
        self._watchers.append(watcher)
        return watcher

    async def close(self) -> None:
        for raw in self._raws:
            raw.close()
        for client in self._clients:
            if client.sio.connected:
                # python-engineio's polling client waits on disconnect for its pending long-poll,
                # which the server answers only with its next ping (~25 s): abort it.
                await client.sio.eio.disconnect(abort=True)
        for watcher in self._watchers:
            if watcher.proc.returncode is None:
                watcher.proc.kill()
                await watcher.proc.wait()


@pytest.fixture
async def opened() -> AsyncIterator[Opened]:
    """Ask for it after the servers' fixtures: its clients then close before the servers stop."""
    clients = Opened()
    yield clients
    await clients.close()


def board_at(snapshot: dict, deltas: list[dict], seq: int, top_n: int) -> dict[str, list[dict]]:
    """The boards a watcher shows after applying `deltas` to `snapshot` up to `seq`."""
    boards = {period: list(rows) for period, rows in snapshot["boards"].items()}
    for delta in deltas:
        if snapshot["seq"] < delta["seq"] <= seq:
            apply_delta(boards, delta, top_n)
    return boards


async def check_js(watcher: Watcher, room: str, snapshot: dict, deltas: list[dict], top_n: int,
                   what: str) -> dict:
    """A node watcher got every delta from the same snapshot as a watcher that got `deltas`
    (each once, in order, no gap), and shows what that one showed at the same seq: it may
    still be a delta or two behind it, never wrong."""
    result = await watcher.result()
    assert result["gaps"] == 0 and result["rewatches"] == 0 and not result["errors"], (what, result)
    seq = result["seq"][room]
    check_in_order(result["deltas"][room], snapshot["seq"], what)
    assert result["boards"][room] == board_at(snapshot, deltas, seq, top_n), what
    return result


def manager_of(running: Running) -> BroadcastManager:
    manager = running.app[SIO].manager
    assert isinstance(manager, BroadcastManager), type(manager)
    return manager


async def server_board(http: aiohttp.ClientSession, url: str, room: str = ROOM, limit: int = 10) -> list[dict]:
    async with http.get(f"{url}/api/v1/leaderboards/{room}", params={"limit": str(limit)}) as resp:
        assert resp.status == 200, await resp.text()
        return (await resp.json())["entries"]


async def skipped_metric(http: aiohttp.ClientSession, url: str) -> float:
    async with http.get(f"{url}/metrics") as resp:
        for line in (await resp.text()).splitlines():
            if line.startswith("scoreboard_deltas_skipped_total "):
                return float(line.split()[1])
    raise AssertionError("no scoreboard_deltas_skipped_total in /metrics")


def check_in_order(deltas: list[dict], after_seq: int, what: str) -> list[int]:
    """The seqs past `after_seq`, which must follow one another without a gap."""
    seqs = [d["seq"] for d in deltas if d["seq"] > after_seq]
    assert seqs == list(range(after_seq + 1, after_seq + 1 + len(seqs))), f"{what}: {seqs}"
    return seqs


class Rotation:
    """Players of region eu whose completions move nearly every row of the board: the one
    ranked last scores `big` and passes the others, who each move down a rank, so a delta
    carries most rows of every period. One completion at a time, in the order of the board."""

    def __init__(self) -> None:
        self.clients: list[Client] = []
        self._order: list[tuple[int, int, int]] = []  # (-score, reached, index): the board's order

    async def setup(self, http: aiohttp.ClientSession, opened: Opened, url: str, count: int) -> None:
        async def join(i: int) -> Client:
            pid = f"p{uuid.uuid4().hex[:10]}"
            body = {"player_id": pid, "name": f"{pid}-{'x' * 20}", "region": "eu"}  # a 32-character name
            async with http.post(f"{url}/api/v1/sessions", json=body) as resp:
                assert resp.status == 201, await resp.text()
                token = (await resp.json())["token"]
            return await opened.client(url, token)

        self.clients = list(await asyncio.gather(*(join(i) for i in range(count))))
        for i, client in enumerate(self.clients):  # one by one: who reached 10 first ranks first
            _, ack = await client.play("quick")
            assert ack["ok"], ack
            self._order.append((-ack["score"]["total"], i, i))

    async def drive(self, stop: asyncio.Event) -> int:
        """Completions until `stop`; how many."""
        reached = len(self._order)
        done = 0
        while not stop.is_set():
            self._order.sort()
            _, _, last = self._order.pop()
            _, ack = await self.clients[last].play("big")
            assert ack["ok"], ack
            reached += 1
            done += 1
            self._order.append((-ack["score"]["total"], reached, last))
        return done


@pytest.fixture(params=["one instance without Redis", "two instances on one Redis"])
async def cluster(request: pytest.FixtureRequest, start_app, settings) -> list[Running]:
    """One app on the in-process manager (no REDIS_URL), or two apps sharing the test's Redis."""
    if request.param == "one instance without Redis":
        apps = [await start_app(settings, redis_url=None)]
        assert type(manager_of(apps[0])) is BroadcastManager
    else:
        apps = [await start_app(settings), await start_app(settings)]
        assert all(isinstance(manager_of(app), RedisFanout) for app in apps)
    return apps


# ---------------------------------------------------------------- delivery


async def test_deltas_reach_websocket_and_polling_watchers_on_every_instance(cluster, http, settings, opened) -> None:
    python: list[tuple[str, Client, dict]] = []
    js: list[tuple[str, Watcher, str]] = []  # (what, watcher, the transport it ends on)
    for i, running in enumerate(cluster):
        for transport in ("websocket", "polling"):
            client = await opened.client(running.url, transports=[transport])
            reply = await client.call("watch", {"room": ROOM})
            assert reply["ok"], reply
            python.append((f"instance {i}, python, {transport}", client, reply["snapshot"]))
        # "polling,websocket": the browser's default, upgraded after the handshake.
        for transports, ends_on in [("websocket", "websocket"), ("polling", "polling"),
                                    ("polling,websocket", "websocket")]:
            watcher = await opened.watcher(running.url, transports, [ROOM])
            js.append((f"instance {i}, js, {transports}", watcher, ends_on))
    players = [await opened.client(cluster[-1].url, (await create_session(http, cluster[-1].url))["token"])
               for _ in range(3)]
    for _ in range(5):
        await asyncio.gather(*(p.play("quick") for p in players))
        await asyncio.sleep(1.5 * settings.flush_ms / 1000)
    final: list[dict] = []

    async def all_caught_up() -> None:
        final[:] = await server_board(http, cluster[0].url)  # once the last flush is applied
        assert sum(row["score"] for row in final) == 5 * 3 * 10
        for what, client, snapshot in python:
            boards = {period: list(rows) for period, rows in snapshot["boards"].items()}
            for delta in client.events.get("leaderboard:delta", []):
                if delta["seq"] > snapshot["seq"]:
                    apply_delta(boards, delta, settings.top_n)
            assert boards["all"] == final, what

    await eventually(all_caught_up)
    for what, client, snapshot in python:
        assert len(check_in_order(client.events["leaderboard:delta"], snapshot["seq"], what)) >= 3, what
    _, reference, snapshot = python[0]
    for what, watcher, ends_on in js:
        result = await check_js(watcher, ROOM, snapshot, reference.events["leaderboard:delta"], settings.top_n, what)
        assert result["transport"] == ends_on, (what, result["transport"])
        assert len(result["deltas"][ROOM]) >= 3, what
    for i, running in enumerate(cluster):
        manager = manager_of(running)
        # Websocket watchers were written to directly, polling ones through engine.io, nobody skipped.
        assert manager.written > 0 and manager.queued > 0 and manager.skipped == 0, (
            i, manager.written, manager.queued, manager.skipped)


async def test_each_connection_gets_its_deltas_in_order_with_its_acks(cluster, http, opened) -> None:
    """Watchers keep calling (`leaderboard:get`) while 300 deltas go to their room, sent from
    the first instance, some through engine.io's queues: each sees every delta in seq order,
    and every ack."""
    room = "region:na"  # no player there: only the deltas this test sends
    raws = [await opened.raw(running.url) for running in cluster for _ in range(2)]
    seq = (await raws[0].watch(room))["seq"]
    for raw in raws[1:]:
        assert (await raw.watch(room))["seq"] == seq
    pythons = [await opened.client(running.url) for running in cluster]
    for client in pythons:
        assert (await client.call("watch", {"room": room}))["snapshot"]["seq"] == seq
    js = [await opened.watcher(running.url, "websocket", [room]) for running in cluster]
    count = 300
    last = seq + count
    stop = asyncio.Event()
    sent: dict[int, list[int]] = {id(raw): [] for raw in raws}
    python_acks: list[dict] = []

    async def read(raw: RawWatcher) -> None:
        while not (raw.deltas() and raw.deltas()[-1]["seq"] == last and set(sent[id(raw)]) <= raw.acks()):
            await raw.packet()

    async def chatter_raw(raw: RawWatcher) -> None:
        while not stop.is_set():
            for _ in range(8):  # several in flight: their acks are queued while deltas go out
                sent[id(raw)].append(await raw.emit("leaderboard:get", {"board": room, "period": "all"}))
            await asyncio.sleep(0.002)

    async def chatter_python(client: Client) -> None:
        while not stop.is_set():
            python_acks.extend(await asyncio.gather(*(
                client.call("leaderboard:get", {"board": room, "period": "all"}) for _ in range(8))))

    readers = [asyncio.create_task(read(raw)) for raw in raws]
    chatters = [asyncio.create_task(chatter_raw(raw)) for raw in raws]
    chatters += [asyncio.create_task(chatter_python(client)) for client in pythons]
    await asyncio.sleep(0.1)
    sio = cluster[0].app[SIO]
    for i in range(1, count + 1):
        # Every 7th asks for an ack: python-socketio sends it through each socket's engine.io queue
        # (an id per recipient), so the ones right after find something queued for every watcher.
        ack: dict[str, Any] = {"callback": ignore_ack} if i % 7 == 0 else {}
        await sio.emit("leaderboard:delta", {"room": room, "seq": seq + i, "at": "", "boards": {}}, room=room, **ack)
        if i % 5 == 0:
            await asyncio.sleep(0.003)
    stop.set()
    await asyncio.gather(*chatters)
    await asyncio.wait_for(asyncio.gather(*readers), 20)

    expected = list(range(seq + 1, last + 1))
    for raw in raws:
        assert [d["seq"] for d in raw.deltas()] == expected
        assert set(sent[id(raw)]) <= raw.acks() and len(sent[id(raw)]) > 10
    for client in pythons:
        await client.wait_event("leaderboard:delta", count)
        assert [d["seq"] for d in client.events["leaderboard:delta"]] == expected
    assert python_acks and all(ack["ok"] for ack in python_acks)
    for watcher in js:
        result = await watcher.result()
        assert result["gaps"] == 0 and [d["seq"] for d in result["deltas"][room]] == expected, result
    managers = [manager_of(running) for running in cluster]
    # Both paths ran on these websockets: written directly, and queued behind an ack.
    assert sum(m.written for m in managers) > 0 and sum(m.queued for m in managers) > 0, [
        (m.written, m.queued, m.skipped) for m in managers]
    assert all(m.skipped == 0 for m in managers)


# ---------------------------------------------------------------- a watcher that stops reading


async def test_a_watcher_that_stops_reading_is_skipped_then_watches_again(start_app, settings, http, opened) -> None:
    top_n = 100
    running = await start_app(settings, top_n=top_n, flush_ms=50)
    manager = manager_of(running)
    # Reached after a few deltas (the kernel's buffers take about 100 kB first): the default
    # MAX_BUFFERED_BYTES would take a few hundred deltas of this size.
    manager.max_buffered_bytes = 16 * 1024
    rotation = Rotation()
    await rotation.setup(http, opened, running.url, 30)
    healthy_js = [await opened.watcher(running.url, transport, [ROOM], top_n) for transport in ("websocket", "polling")]
    healthy = await opened.client(running.url)
    healthy_snapshot = (await healthy.call("watch", {"room": ROOM}))["snapshot"]
    stalled = await opened.raw(running.url, small_buffers=True)
    follower = Follower(stalled, ROOM, await stalled.watch(ROOM), top_n)
    # From here on the stalled watcher reads nothing.
    stop = asyncio.Event()
    driving = asyncio.create_task(rotation.drive(stop))

    async def skipped_for_a_while() -> None:
        if driving.done():
            driving.result()  # the players' failure, if that is why
        assert manager.skipped >= 20

    await eventually(skipped_for_a_while, timeout=30)
    assert await skipped_metric(http, running.url) >= 20
    # It reads again: what its buffers held, then a gap; it watches again and goes on from there.
    deadline = time.monotonic() + 30
    while len(follower.applied_after_rewatch) < 10:
        assert time.monotonic() < deadline, (follower.gaps, follower.applied[-5:])
        await follower.step()
    stop.set()
    done = await driving
    assert follower.gaps >= 1
    # Once the last flush is out, it shows the board as the server has it.
    deadline = time.monotonic() + 15
    while follower.boards["all"] != (final := await server_board(http, running.url, limit=top_n)):
        assert time.monotonic() < deadline, "the watcher that read again never caught up"
        with contextlib.suppress(TimeoutError):
            await follower.step(timeout=0.2)

    # Everyone else got every delta.
    async def healthy_caught_up() -> None:
        boards = {period: list(rows) for period, rows in healthy_snapshot["boards"].items()}
        for delta in healthy.events["leaderboard:delta"]:
            if delta["seq"] > healthy_snapshot["seq"]:
                apply_delta(boards, delta, top_n)
        assert boards["all"] == final

    await eventually(healthy_caught_up)
    deltas = healthy.events["leaderboard:delta"]
    check_in_order(deltas, healthy_snapshot["seq"], "python watcher")
    for watcher, transport in zip(healthy_js, ("websocket", "polling"), strict=True):
        result = await check_js(watcher, ROOM, healthy_snapshot, deltas, top_n, f"node watcher on {transport}")
        assert len(result["deltas"][ROOM]) >= 20, transport
    assert done > 50


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


async def test_memory_stays_bounded_with_200_watchers_that_stopped_reading(instances, http, opened) -> None:
    stalled_count, top_n = 200, 100
    instance = await instances(TOP_N=str(top_n), LEADERBOARD_FLUSH_MS="50")
    rotation = Rotation()
    await rotation.setup(http, opened, instance.url, 40)
    reader = await opened.raw(instance.url, small_buffers=True)  # reads everything: the traffic per watcher
    reader_follower = Follower(reader, ROOM, await reader.watch(ROOM), top_n)
    stalled: list[RawWatcher] = []
    for _ in range(stalled_count // 20):
        batch = await asyncio.gather(*(opened.raw(instance.url, small_buffers=True) for _ in range(20)))
        await asyncio.gather(*(raw.watch(ROOM) for raw in batch))
        stalled += batch
    before_kb = rss_kb(instance.proc.pid)
    stop = asyncio.Event()
    driving = asyncio.create_task(rotation.drive(stop))
    samples: list[int] = []
    read_from = reader.bytes_read
    started = time.monotonic()
    # Until each watcher was sent over 1.2 MB (the server would hold about 200 x that without
    # the bound), at most 40 s (under the ping timeout, which would close the stalled ones).
    while reader.bytes_read - read_from < 1.2e6 and time.monotonic() - started < 40:
        if driving.done():
            driving.result()
        with contextlib.suppress(TimeoutError):
            await reader_follower.step(timeout=0.2)
        if time.monotonic() - started > len(samples) * 0.5:
            samples.append(rss_kb(instance.proc.pid))
    stop.set()
    await driving
    samples.append(rss_kb(instance.proc.pid))
    traffic = reader.bytes_read - read_from
    skipped = await skipped_metric(http, instance.url)
    growth_kb = max(samples) - before_kb
    # What the server may hold for each: MAX_BUFFERED_BYTES and the frame that crossed it; and
    # some for the interpreter's own allocations under the load.
    bound_kb = stalled_count * (MAX_BUFFERED_BYTES + 64 * 1024) / 1024 + 40 * 1024
    summary = (f"RSS {before_kb} kB before, then {samples}; {traffic / 1e6:.2f} MB sent to each watcher "
               f"in {time.monotonic() - started:.1f} s; {skipped:.0f} skipped")
    assert traffic >= 1.2e6, "not enough traffic to tell: " + summary
    assert skipped >= stalled_count, summary
    assert growth_kb < bound_kb, summary
    assert reader_follower.gaps == 0, summary  # the one that reads got every delta
