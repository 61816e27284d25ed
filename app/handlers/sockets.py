"""Socket.IO events: connect and rooms, actions, leaderboard reads (PROTOCOL.md 4-6)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import socketio
from aiohttp import web
from engineio.async_drivers import aiohttp as engineio_aiohttp
from socketio import packet
from socketio.exceptions import ConnectionRefusedError as Refused

from app.abuse.events import EventGuard
from app.abuse.peers import PeerLimits, client_ip
from app.anticheat.tokens import SessionClaims
from app.config import Network
from app.drain import Drain
from app.engine import Engine
from app.errors import ProtocolError, outage_as_unavailable
from app.handlers.replies import acked
from app.metrics import Metrics
from app.rooms.names import home_rooms, parse_board
from app.schemas import ActionCompleteSchema, ActionStartSchema, LeaderboardGetSchema, RoomSchema, TournamentJoinSchema
from app.services import Services

log = logging.getLogger(__name__)

ACK_GRACE_S = 0.05


# "*" too: python-socketio looks a handler up by the event's name first, so a client event named "*"
# reached the catch-all handler without its name in front of the arguments (and got no ack).
RESERVED_EVENTS = frozenset({"connect", "disconnect", "connect_error", "disconnecting", "newListener", "removeListener",
                             "*"})


class PacketJson:
    """engine.io's JSON, but an integer literal over 100 characters is read as a float.

    python-socketio refuses such literals (int() of a long digit string is slow) by
    dropping the whole packet, so the event was never acknowledged; as a float (inf past
    1e308) every schema refuses it as invalid_payload.

    orjson does the work where it gives the standard library's answer (in under a tenth of
    the time per packet; see the README's benchmarks): any text it refuses (NaN, a lone
    surrogate, nesting past its limit), and any with a run of 19 digits (orjson reads an
    integer past 64 bits as a float), is read by the standard library as before. What it
    writes is the same JSON, but compact UTF-8 rather than ASCII escapes.
    """

    @staticmethod
    def dumps(obj: object, **kwargs: Any) -> str:
        try:
            return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS).decode()
        except TypeError:  # orjson.JSONEncodeError: an integer past 64 bits, a type it lacks
            return json.dumps(obj, **kwargs)

    @staticmethod
    def loads(text: str | bytes, **kwargs: Any) -> object:
        if not kwargs and isinstance(text, str) and _LONG_DIGITS.search(text) is None:
            try:
                return orjson.loads(text)
            except orjson.JSONDecodeError:
                pass  # the standard library decides, below: as before, whatever orjson refused
        kwargs.setdefault("parse_int", lambda digits: int(digits) if len(digits) <= 100 else float(digits))
        try:
            return json.loads(text, **kwargs)
        except RecursionError:
            # Nested deeper than the interpreter recurses. As a ValueError it is bad JSON like any
            # other: engine.io then keeps the text for Socket.IO to refuse, instead of the
            # exception escaping its websocket loop.
            raise ValueError("JSON nested too deep") from None


_LONG_DIGITS = re.compile(r"[0-9]{19}")


CLIENT_IP = "app.client_ip"  # in the environ Socket.IO keeps per transport: the address it was counted under

# Socket.IO packet types a client may send: CONNECT, DISCONNECT, EVENT, ACK. BINARY_EVENT and
# BINARY_ACK (attachments) are not part of the protocol; CONNECT_ERROR only goes to clients.
CLIENT_PACKET_TYPES = frozenset("0123")
BINARY_PACKET_TYPES = frozenset("56")


class RefusedPacket(ValueError):
    """A packet the server does not take; its connection is closed. `why` never holds the packet."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class JsonPacket(packet.Packet):
    """python-socketio's packet, decoding only what PROTOCOL.md section 1 allows: JSON packets
    of the four client types, an event being a non-empty array and an ack an array.

    Anything else raises RefusedPacket, before python-socketio keeps or dispatches anything:
    a BINARY_EVENT / BINARY_ACK header is refused on its first character, so the attachments
    it announces are never waited for (python-socketio would buffer every following frame of
    the connection for it, for any number announced).
    """

    def decode(self, encoded_packet: object) -> int:
        if not isinstance(encoded_packet, str):
            # bytes: a binary frame; a dict, list or number: engine.io took the text for JSON.
            raise RefusedPacket("a binary frame" if isinstance(encoded_packet, bytes | bytearray)
                                else "a message that is not a Socket.IO packet")
        kind = encoded_packet[:1]
        if kind in BINARY_PACKET_TYPES:
            raise RefusedPacket("a binary packet (attachments)")
        if kind not in CLIENT_PACKET_TYPES:
            raise RefusedPacket(f"an unknown packet type {kind!r}")
        try:
            attachments = super().decode(encoded_packet)
        except ValueError:  # bad JSON (PacketJson turns too deep into a ValueError), an id too long
            raise RefusedPacket("a packet that is not valid JSON") from None
        if attachments:
            raise RefusedPacket("a packet announcing attachments")
        if self.packet_type == packet.EVENT and not (isinstance(self.data, list) and self.data):
            raise RefusedPacket("an event that is not a non-empty array")
        if self.packet_type == packet.ACK and not isinstance(self.data, list):
            raise RefusedPacket("an ack that is not an array")
        return 0


# engine.io packet types, as the first character of a text frame: OPEN, CLOSE, PING, PONG,
# MESSAGE, UPGRADE, NOOP.
ENGINEIO_PACKET_TYPES = frozenset("0123456")
MAX_POLLING_PACKETS = 16  # engine.io's Payload.max_decode_packets: more raise in its decoder
# What a client POSTs: CLOSE, PONG, MESSAGE. Any other type is an error engine.io answers by
# closing the session and waiting for the client to read its queue (for ever, if it never polls).
POLLING_CLIENT_TYPES = frozenset("134")


def polling_body_refused(body: bytes) -> str | None:
    """Why engine.io could not take this long-polling POST body (None: it can). Its decoder's
    failures (not UTF-8, an empty or unknown packet, too many packets, bad base64) were logged
    with a traceback per request, and the session kept. (A JSONP form body, `d=...`, is refused
    too: no Socket.IO 4 client sends one.)"""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "a body that is not UTF-8"
    if not text:
        return None
    packets = text.split("\x1e")
    if len(packets) > MAX_POLLING_PACKETS:
        return "too many packets in one request"
    for pkt in packets:
        if pkt[:1] == "b":
            return "a binary frame"  # base64 over polling; refused as binary by Socket.IO anyway
        if pkt[:1] not in POLLING_CLIENT_TYPES:
            return "a frame that is no engine.io packet"
    return None


class _Body:
    """A request body already read, handed to engine.io as its `wsgi.input`."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    async def read(self, length: int = -1) -> bytes:
        data, self._data = (self._data, b"") if length < 0 else (self._data[:length], self._data[length:])
        return data


class CheckedWebSocket(engineio_aiohttp.WebSocket):
    """engine.io's aiohttp websocket, ending the connection at a text frame that is no
    engine.io packet. engine.io decodes frames outside any error handling: an empty frame or
    one not starting with a digit escaped its websocket loop (a traceback, and the transport
    left half-open), and a type past NOOP logged a traceback per frame on a connection it kept."""

    # Private: engine.io's wrapper prepares aiohttp's WebSocketResponse here and runs its session's
    # websocket loop. The same steps, with two differences that each save a connection's memory:
    # - no permessage-deflate (compress=False): compressing each watcher's copy of a delta
    #   separately, with a compressor per connection, costs more CPU and memory than it saves
    #   (the fast path, app/broadcast.py, writes uncompressed frames);
    # - the handshake's environ emptied once read: engine.io's coroutines hold that dict (every
    #   header again, as HTTP_* keys) for the websocket's whole life and read nothing more of it;
    #   Socket.IO keeps its own, smaller one (SocketServer._handle_eio_connect).
    async def __call__(self, environ: dict) -> web.WebSocketResponse:
        request = environ["aiohttp.request"]
        self._sock = web.WebSocketResponse(max_msg_size=self.server.max_http_buffer_size, compress=False)
        await self._sock.prepare(request)
        environ.clear()
        await self.handler(self)
        return self._sock

    async def wait(self) -> str | bytes | None:
        # engine.io's own wait, inline (its coroutine would be one more frame held per connection).
        msg = await self._sock.receive()
        data = msg.data
        if not isinstance(data, str | bytes):
            raise OSError()  # a close or an error: engine.io's loop ends
        if isinstance(data, str) and data[:1] not in ENGINEIO_PACKET_TYPES:
            log.warning("closing a connection that sent a frame that is no engine.io packet",
                        extra={"code": "invalid_payload"})
            return None  # what engine.io's loop reads as the client having closed: it closes cleanly
        return data


class _Transport:
    """One engine.io transport: the address it counts against, and its connect timer."""

    __slots__ = ("ip", "timer")

    def __init__(self, ip: str) -> None:
        self.ip = ip
        self.timer: asyncio.TimerHandle | None = None

    def stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class SocketServer(socketio.AsyncServer):
    """An AsyncServer that holds every client event to the per-connection rate limit, and
    never hands one to a lifecycle handler; that counts engine.io transports per client
    address and closes those that do not open the namespace in time; and that closes a
    connection sending a packet it cannot take (section 1).

    python-socketio dispatches an event packet named "connect" or "disconnect" to the
    connect and disconnect handlers; a client could re-run connect or fake a disconnect.
    Such names, and names that are not strings, go to the catch-all handler instead,
    which answers invalid_payload.

    Transports (section 1, CONNECTIONS_PER_IP, CONNECT_TIMEOUT_S): each engine.io session is
    counted against its address at the handshake, open or not yet Socket.IO-connected, and
    one past the limit is refused there (401) before it costs more; the count is released
    when engine.io closes the session, whatever closed it. A transport without the namespace
    open (not yet, or no longer) holds one timer handle, and is closed when it fires.
    """

    def __init__(self, *args: object, guard: EventGuard, drain: Drain, metrics: Metrics, peers: PeerLimits,
                 trusted_proxies: tuple[Network, ...], connect_timeout_s: float, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.guard = guard
        self._drain = drain
        self._metrics = metrics
        self._peers = peers
        self._trusted_proxies = trusted_proxies
        self._connect_timeout_s = connect_timeout_s
        self._transports: dict[str, _Transport] = {}
        self._closing: set[asyncio.Task] = set()  # referenced until done (the loop keeps only weak ones)
        # Private: engine.io looks its request translation and websocket class up in the async
        # driver's table, `_async`, on every request; the one way to check frames and polling
        # bodies before engine.io decodes them (its decoding errors escape its error handling).
        self._translate_request = self.eio._async["translate_request"]
        self.eio._async = {**self.eio._async, "websocket": CheckedWebSocket,
                           "translate_request": self._checked_request}

    async def _checked_request(self, request: web.Request) -> dict:
        """engine.io's environ for an aiohttp request. A long-polling POST to an open session
        is read here first: a body engine.io could not decode closes the session (engine.io
        then answers 400, the session being gone) and is never handed to it."""
        environ = self._translate_request(request)
        sid = request.query.get("sid")
        length = request.content_length
        if (request.method == "POST" and sid in self._transports and length
                and length <= self.eio.max_http_buffer_size):
            # Larger or chunked bodies stay engine.io's: it refuses the first and reads nothing of the second.
            body = await request.read()
            environ["wsgi.input"] = _Body(body)
            refused = polling_body_refused(body)
            if refused is not None:
                self._metrics.limited.labels("bad_packet").inc()
                log.warning("closing a connection that sent %s", refused, extra={"code": "invalid_payload"})
                await self.close_transport(sid)
        return environ

    def address_of(self, environ: dict) -> str:
        """The client address of a transport, from aiohttp's request (engine.io's environ has
        REMOTE_ADDR hard-coded to 127.0.0.1) and, behind TRUSTED_PROXIES, X-Forwarded-For."""
        request = environ.get("aiohttp.request")
        if request is None:
            return "unknown"
        return client_ip(request.remote, request.headers.getall("X-Forwarded-For", ()), self._trusted_proxies)

    # Private: python-socketio builds its engine.io server from this class; ours makes each
    # session cost less memory (app/engine.py).
    def _engineio_server_class(self) -> type[Engine]:
        return Engine

    # Private: python-socketio's handler of engine.io's connect event, called once per
    # handshake. Returning anything but None/True makes engine.io drop the new session and
    # answer 401 with the value as its JSON body (a python-socketio client hands that body to
    # connect_error), before the transport costs more than its handshake.
    async def _handle_eio_connect(self, eio_sid, environ):
        ip = self.address_of(environ)
        if not self._peers.open_connection(ip):
            self._metrics.limited.labels("connections_per_ip").inc()
            return {"message": "rate_limited"}
        transport = self._transports[eio_sid] = _Transport(ip)
        try:
            await super()._handle_eio_connect(eio_sid, environ)
        except BaseException:
            del self._transports[eio_sid]
            self._peers.close_connection(ip)
            raise
        # python-socketio keeps the handshake's environ for the session's life, to hand it to the
        # connect handler at each Socket.IO CONNECT: all of it, with the aiohttp request (and so a
        # long-polling handshake's whole request) in it. The connect handler reads only the address.
        self.environ[eio_sid] = {CLIENT_IP: ip}
        self.eio.adopt(eio_sid)
        self._arm(eio_sid, transport)
        return None

    # Private: python-socketio's handler of engine.io's disconnect event, which engine.io fires
    # exactly once per session it accepted, however the session ends (client, ping timeout,
    # server close): the one place a transport's count is released.
    async def _handle_eio_disconnect(self, eio_sid, reason):
        transport = self._transports.pop(eio_sid, None)
        if transport is not None:
            transport.stop_timer()
            self._peers.close_connection(transport.ip)
        await super()._handle_eio_disconnect(eio_sid, reason)

    # Private: python-socketio's handler of every engine.io message, which decodes it (with
    # JsonPacket, the `serializer`) and dispatches it. A binary frame, or a packet JsonPacket
    # refuses, closes the transport with one log line: the stock code logs a traceback per
    # packet and keeps the connection, and buffers binary frames for an announced attachment.
    async def _handle_eio_message(self, eio_sid, data):
        if eio_sid not in self._transports:
            return  # closed already: what the client still had in flight is dropped unread
        try:
            if isinstance(data, bytes | bytearray):
                raise RefusedPacket("a binary frame")
            if not isinstance(data, str) or not data:
                # engine.io took the text for JSON ("4{}", "4null"), or there was none ("4"):
                # python-socketio would not decode it at all, and dispatch it as an empty event.
                raise RefusedPacket("a message that is not a Socket.IO packet")
            await super()._handle_eio_message(eio_sid, data)
        except RefusedPacket as refused:
            self._metrics.limited.labels("bad_packet").inc()
            log.warning("closing a connection that sent %s", refused.why, extra={"code": "invalid_payload"})
            await self.close_transport(eio_sid)
            return
        if data[:1] in ("0", "1"):  # CONNECT or DISCONNECT: the namespace opened, or not, or closed
            self._namespace_changed(eio_sid)

    async def disconnect(self, sid, namespace=None, ignore_queue=False):
        """Socket.IO's disconnect; the transport, left without its namespace, then has
        CONNECT_TIMEOUT_S to open it again (a client library closes it at once)."""
        eio_sid = self.manager.eio_sid_from_sid(sid, namespace or "/")
        await super().disconnect(sid, namespace=namespace, ignore_queue=ignore_queue)
        if eio_sid is not None:
            self._namespace_changed(eio_sid)

    def _namespace_changed(self, eio_sid: str) -> None:
        transport = self._transports.get(eio_sid)
        if transport is None:
            return
        if self.manager.sid_from_eio_sid(eio_sid, "/") is not None:
            transport.stop_timer()  # connected: the timer never fires for a client that connects in time
        else:
            self._arm(eio_sid, transport)

    def _arm(self, eio_sid: str, transport: _Transport) -> None:
        if transport.timer is None:
            loop = asyncio.get_running_loop()
            transport.timer = loop.call_later(self._connect_timeout_s, self._connect_timed_out, eio_sid)

    def _connect_timed_out(self, eio_sid: str) -> None:
        transport = self._transports.get(eio_sid)
        if transport is None:
            return
        transport.timer = None
        self._metrics.limited.labels("connect_timeout").inc()
        task = asyncio.ensure_future(self.close_transport(eio_sid))  # a task only for a transport that timed out
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close_transport(self, eio_sid: str) -> None:
        """Close an engine.io session now, whatever its transport and whether or not its
        client reads: engine.io's disconnect event fires (releasing the count), the client is
        sent engine.io's CLOSE packet, and a websocket is closed."""
        socket = self.eio.sockets.get(eio_sid)
        if socket is None or socket.closed:
            return
        # Not eio.disconnect(): it waits until the client has read its send queue, forever for a
        # polling client that never polls again.
        await socket.close(wait=False, reason=self.reason.SERVER_DISCONNECT)
        # None is engine.io's own end-of-queue marker (its websocket handler puts it there on the
        # way out): the websocket writer stops and closes the websocket at once, instead of after
        # the ping timeout; a pending long-poll is answered with the CLOSE packet.
        await socket.queue.put(None)
        self.eio.sockets.pop(eio_sid, None)  # as eio.disconnect does; a closed session answers 400 from then on

    async def _handle_event_internal(self, server, sid, eio_sid, data, namespace, id):
        with self._drain.tracked():  # until the ack is queued: a draining instance sends it before closing
            return await self._admit_event(server, sid, eio_sid, data, namespace, id)

    async def _admit_event(self, server, sid, eio_sid, data, namespace, id):
        verdict = self.guard.admit(sid)
        if not verdict.allowed:
            self._metrics.limited.labels("flood" if verdict.flood else "events").inc()
            if id is not None:
                what = "too many events: disconnecting" if verdict.flood else "too many events"
                error = ProtocolError("rate_limited", what, retry_after_ms=verdict.retry_after_ms)
                reply = {"ok": False, "error": error.as_error()}
                ack = self.packet_class(packet.ACK, namespace=namespace, id=id, data=[reply])
                await self._send_packet(eio_sid, ack)
            if verdict.flood:
                log.info("connection disconnected for flooding", extra={"code": "rate_limited"})
                await self.disconnect(sid, namespace=namespace)
            return None
        if data and (not isinstance(data[0], str) or data[0] in RESERVED_EVENTS):
            name = data[0] if isinstance(data[0], str) else "(not a string)"
            data = [f"reserved:{name}", *data[1:]]
        return await super()._handle_event_internal(server, sid, eio_sid, data, namespace, id)


class Connection:
    """Per-connection state, kept in the Socket.IO session of that connection."""

    __slots__ = ("player", "transport", "ip", "home", "watched")  # one per connection: no __dict__ each

    def __init__(self, player: SessionClaims | None, transport: str, ip: str) -> None:
        self.player = player
        self.transport = transport
        self.ip = ip
        self.home: set[str] = set(home_rooms(player.player_id, player.region, player.guild)) if player else set()
        self.watched: set[str] = set()

    @property
    def role(self) -> str:
        return "player" if self.player else "spectator"


async def close_revoked(sio: socketio.AsyncServer, player_id: str, before_ms: int) -> int:
    """Close this instance's connections of the player whose session was issued before
    `before_ms` (a revocation); the number closed. Only local ones: each instance closes its own."""
    closed = 0
    # The manager's rooms hold only this instance's connections, even with the Redis manager.
    for sid, _ in list(sio.manager.get_participants("/", f"player:{player_id}")):
        try:
            conn: Connection = (await sio.get_session(sid))["conn"]
        except KeyError:
            continue  # disconnecting already
        if conn.player is not None and conn.player.issued_ms < before_ms:
            await sio.disconnect(sid)
            closed += 1
    return closed


class SharedSnapshots:
    """Snapshot reads of a room shared by the watches that joined it before the read began.

    A watch joins the room, then reads the snapshot, so that no delta falls between the two
    (a delta racing the read arrives with a higher seq). Every watch that joined before a read
    began can take that read's snapshot with the same guarantee. So per room at most one read is
    in flight, and the watches that come meanwhile wait for the next one, which begins when it
    ends: a burst of N joins costs a few reads instead of N, and the snapshot (its rows) is built
    a few times instead of once per watcher, memory that outlived each join in the allocator.
    """

    def __init__(self, read: Callable[[str], Awaitable[dict]]) -> None:
        self._read = read
        self._reading: dict[str, asyncio.Task] = {}  # referenced until done (the loop keeps only weak ones)
        self._next: dict[str, asyncio.Future[dict]] = {}  # per room: the read the latest watches wait for

    async def read(self, room: str) -> dict:
        pending = self._next.get(room)
        if pending is None:
            pending = self._next[room] = asyncio.get_running_loop().create_future()
            if room not in self._reading:
                self._begin(room)
        # Shielded: one watch given up (its handler cancelled) must not cancel the others' read.
        return await asyncio.shield(pending)

    def _begin(self, room: str) -> None:
        pending = self._next.pop(room)
        task = self._reading[room] = asyncio.ensure_future(self._read(room))
        task.add_done_callback(lambda done: self._done(room, done, pending))

    def _done(self, room: str, task: asyncio.Future[dict], pending: asyncio.Future[dict]) -> None:
        del self._reading[room]
        if task.cancelled():
            pending.cancel()
        elif (error := task.exception()) is not None:
            pending.set_exception(error)
        else:
            pending.set_result(task.result())
        if room in self._next:  # watches that joined while this read was in flight
            self._begin(room)


def register(sio: SocketServer, services: Services, metrics: Metrics, drain: Drain) -> None:
    async def connection(sid: str) -> Connection:
        return (await sio.get_session(sid))["conn"]

    snapshots = SharedSnapshots(services.feed.snapshot)

    closing: set[asyncio.Task] = set()  # referenced until done (the loop keeps only weak ones)

    def close_after_ack(sid: str) -> None:
        async def close() -> None:
            # The refusal's ack is queued as the handler returns; engine.io sends what is queued
            # before its close. The grace keeps the ack first even if a send path awaits on the way.
            await asyncio.sleep(ACK_GRACE_S)
            await sio.disconnect(sid)

        task = asyncio.create_task(close())
        closing.add(task)
        task.add_done_callback(closing.discard)

    async def acting(sid: str) -> tuple[Connection, SessionClaims]:
        """The connection and its player, its session checked again at every action: past
        SESSION_TTL_S (token_expired) or revoked (token_invalid), the ack says so and the
        connection is closed."""
        conn = await connection(sid)
        if conn.player is None:
            raise ProtocolError("not_a_player", "connect with a session token to play")
        try:
            services.players.check_session(conn.player)
        except ProtocolError:
            close_after_ack(sid)
            raise
        return conn, conn.player

    @sio.event
    async def connect(sid: str, environ: dict, auth: object = None) -> None:
        player = None
        if auth not in (None, {}):
            token = auth.get("token") if isinstance(auth, dict) else None
            try:
                player = services.signer.read_session(token)
                await services.players.check_connect(player)
            except ProtocolError as exc:
                raise Refused(exc.code) from None
        if drain.draining:
            raise Refused("unavailable")
        # Counted against CONNECTIONS_PER_IP once per transport, at its handshake (SocketServer).
        conn = Connection(player, sio.transport(sid), environ[CLIENT_IP])
        await sio.save_session(sid, {"conn": conn})
        for room in conn.home:
            await sio.enter_room(sid, room)
        metrics.connections.labels(conn.role).inc()

    @sio.event
    async def disconnect(sid: str, reason: object = None) -> None:
        sio.guard.forget(sid)
        try:
            conn = await connection(sid)
        except KeyError:
            return
        metrics.connections.labels(conn.role).dec()

    @sio.on("watch")
    @acked("watch", metrics, drain)
    async def watch(sid: str, data: Any) -> dict:
        room = RoomSchema().load(data)["room"]
        conn = await connection(sid)
        viewer_guild = conn.player.guild if conn.player else None
        counts = services.watch.check(room, viewer_guild, conn.watched, conn.home)
        await services.watch.check_exists(room)  # an unknown tournament's room: not_found
        # Join before reading: a delta racing the snapshot then arrives with a higher seq
        # instead of being missed (a read begun before the join is never shared: SharedSnapshots).
        await sio.enter_room(sid, room)
        try:
            with outage_as_unavailable("the leaderboard store"):
                snapshot = await snapshots.read(room)
        except Exception:
            # Not watching it after all: out of the room again, unless it was in it before (a
            # room already watched, or a home room). Kept in it, the socket would get deltas
            # for a room it does not count, and that unwatch would never take it out of.
            if room not in conn.watched and room not in conn.home:
                await sio.leave_room(sid, room)
            raise
        if counts:
            conn.watched.add(room)
        return {"room": room, "snapshot": snapshot}

    @sio.on("unwatch")
    @acked("unwatch", metrics, drain)
    async def unwatch(sid: str, data: Any) -> dict:
        room = RoomSchema().load(data)["room"]
        services.watch.check_name(room)
        conn = await connection(sid)
        if room in conn.watched:
            conn.watched.discard(room)
            if room not in conn.home:
                await sio.leave_room(sid, room)
        return {}

    # Built once: a schema is reusable, and building one costs three times its load (the hot path's).
    start_schema, complete_schema = ActionStartSchema(), ActionCompleteSchema()

    @sio.on("action:start")
    @acked("action:start", metrics, drain)
    async def action_start(sid: str, data: Any) -> dict:
        req = start_schema.load(data)
        _, player = await acting(sid)
        try:
            return {"challenge": await services.actions.start(player, req["action"])}
        except ProtocolError as exc:
            metrics.rejected.labels("start", exc.code).inc()
            raise

    @sio.on("action:complete")
    @acked("action:complete", metrics, drain)
    async def action_complete(sid: str, data: Any) -> dict:
        req = complete_schema.load(data)
        conn, player = await acting(sid)
        try:
            result = await services.actions.complete(player, req["token"], req["proof"], client=conn.ip)
        except ProtocolError as exc:
            metrics.actions.labels(exc.code).inc()
            metrics.rejected.labels("complete", exc.code).inc()
            raise
        metrics.actions.labels("duplicate" if result["duplicate"] else "credited").inc()
        return result

    @sio.on("leaderboard:get")
    @acked("leaderboard:get", metrics, drain)
    async def leaderboard_get(sid: str, data: Any) -> dict:
        req = LeaderboardGetSchema(periods=services.reads.periods).load(data)
        board = parse_board(req["board"], services.watch.regions)
        return await services.reads.get(board, req["period"], req["limit"], req["offset"], req["around"],
                                        day=req.get("day"), week=req.get("week"))

    @sio.on("tournament:join")
    @acked("tournament:join", metrics, drain)
    async def tournament_join(sid: str, data: Any) -> dict:
        req = TournamentJoinSchema().load(data)
        _, player = await acting(sid)
        return await services.tournaments.join(player, req["tournament"])

    @sio.on("*")
    async def unknown_event(event: str, sid: str, *args: object) -> dict:
        metrics.events.labels("unknown", "invalid_payload").inc()
        return {"ok": False, "error": {"code": "invalid_payload", "message": f"unknown event {str(event)[:64]!r}"}}
