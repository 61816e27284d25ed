"""The broadcast fast path: a room emit without an ack is encoded once, framed once as a
WebSocket text frame, and written straight to each websocket recipient's transport from one
loop, with no task per recipient (PROTOCOL.md 6).

python-socketio encodes a broadcast once but then starts one task per recipient, which puts
the packet on the engine.io socket's queue, where the socket's writer task takes it and
aiohttp frames it again: two task switches and a framing per watcher. Node's socket.io
pre-encodes the frame (`wsPreEncodedFrame`); this goes one step further and writes it.

Invariants:
- Order per connection: a recipient is written to directly only while engine.io holds nothing
  for it (its queue empty, no packet taken off it and not yet written, its writer not inside a
  send); otherwise the packet goes through its queue, behind what is there. Later packets of
  that connection (acks, pings) go through the queue and so follow what was written.
- Memory: a recipient whose transport is closing, or holds more than MAX_BUFFERED_BYTES unsent,
  or whose engine.io queue holds MAX_QUEUED_PACKETS already, is skipped for that packet and
  counted (`on_skipped`): it sees a seq gap and calls `watch` again. The server never holds
  more than about that much for a watcher that stopped reading.
- Only uncompressed websockets (permessage-deflate is refused, app/handlers/sockets.py CheckedWebSocket);
  polling, upgrading and compressed ones take engine.io's path, bounded the same way.

Private names of python-engineio, aiohttp and asyncio used here are listed in
tests/test_private_names.py, so an upgrade that changes one fails there by name.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet as sio_packet

MAX_BUFFERED_BYTES = 256 * 1024  # unsent bytes in a recipient's transport past which it is skipped
MAX_QUEUED_PACKETS = 32  # packets in a recipient's engine.io queue past which it is skipped

_OPCODE_TEXT_FIN = 0x81  # FIN set, no RSV bits (no compression), opcode 1 (text)


def text_frame(payload: bytes) -> bytes:
    """A server-to-client WebSocket frame of `payload` (RFC 6455 5.2): text, FIN, unmasked,
    uncompressed; the bytes aiohttp's writer sends for the same message."""
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", _OPCODE_TEXT_FIN, length)
    elif length < 65536:
        header = struct.pack("!BBH", _OPCODE_TEXT_FIN, 126, length)
    else:
        header = struct.pack("!BBQ", _OPCODE_TEXT_FIN, 127, length)
    return header + payload


def _ignore(count: int) -> None:
    pass


class BroadcastManager(socketio.AsyncManager):
    """python-socketio's in-process manager with the fast path in `emit`.

    Used as is on one instance (no Redis), and as the base that RedisFanout's local delivery
    reaches: AsyncPubSubManager._handle_emit delivers every emit (this instance's own and those
    from Redis) through `super().emit`, which is this class's in RedisFanout's MRO.

    `on_skipped(n)` is called with the number of recipients skipped for one emit (when any).
    `written` / `queued` / `skipped` count recipients by path, for tests and benchmarks.
    """

    def __init__(self, *, on_skipped: Callable[[int], None] = _ignore, max_buffered_bytes: int = MAX_BUFFERED_BYTES,
                 max_queued_packets: int = MAX_QUEUED_PACKETS) -> None:
        super().__init__()
        self._init_broadcast(on_skipped, max_buffered_bytes, max_queued_packets)

    def _init_broadcast(self, on_skipped: Callable[[int], None], max_buffered_bytes: int,
                        max_queued_packets: int) -> None:
        self.on_skipped = on_skipped
        self.max_buffered_bytes = max_buffered_bytes
        self.max_queued_packets = max_queued_packets
        self.written = self.queued = self.skipped = 0
        # engine.io sid -> its websocket wrapper, while engine.io runs that websocket.
        self._websockets: dict[str, Any] = {}

    def initialize(self) -> None:
        """Called by python-socketio before the first connection is handled (after the server,
        SocketServer included, has finished setting engine.io up): from here on every websocket
        engine.io opens is registered against its session."""
        super().initialize()
        eio = self.server.eio
        # Private: engine.io looks its websocket class up in the async driver's table `_async`
        # for every websocket it opens (SocketServer replaced it already; we wrap what is there).
        # It is the one place to learn which websocket belongs to which engine.io session.
        eio._async = {**eio._async, "websocket": _tracking(eio._async["websocket"], self._websockets)}

    async def emit(self, event, data, namespace, room=None, skip_sid=None, callback=None, to=None, **kwargs):
        """AsyncManager.emit for this instance's recipients; an emit without an ack takes the
        fast path, which never suspends: no other emit can come between two of its recipients.

        Websocket recipients with nothing pending in engine.io get the frame written to their
        transport; the others get the packet put on their engine.io queue at once (unbounded:
        put_nowait never fails), so a later emit finds it there and queues behind it. engine.io's
        service task checks ping timeouts on its own; AsyncSocket.send's check is not needed.
        """
        room = to or room
        if callback is not None or namespace not in self.rooms:
            return await super().emit(event, data, namespace, room=room, skip_sid=skip_sid, callback=callback,
                                      **kwargs)
        # As AsyncManager.emit: a tuple is several arguments, None none, anything else one.
        args = list(data) if isinstance(data, tuple) else [] if data is None else [data]
        encoded = self.server.packet_class(sio_packet.EVENT, namespace=namespace, data=[event, *args]).encode()
        if not isinstance(encoded, str):  # binary attachments: several engine.io packets; the stock path
            return await super().emit(event, data, namespace, room=room, skip_sid=skip_sid, **kwargs)
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        pkt = eio_packet.Packet(eio_packet.MESSAGE, encoded)
        frame = text_frame(pkt.encode().encode("utf-8"))
        sockets = self.server.eio.sockets
        websockets = self._websockets
        max_buffered, max_queued = self.max_buffered_bytes, self.max_queued_packets
        written = queued = skipped = 0
        for sid, eio_sid in self.get_participants(namespace, room):
            if sid in skip:
                continue
            socket = sockets.get(eio_sid)
            if socket is None or socket.closed:
                continue  # gone: nothing to deliver to
            ws = websockets.get(eio_sid)
            transport = _direct_transport(socket, ws)
            if transport is None:  # polling, upgrading, closing, compressed: engine.io's queue
                if socket.queue.qsize() >= max_queued:
                    skipped += 1
                else:
                    socket.queue.put_nowait(pkt)
                    queued += 1
                continue
            if transport.is_closing() or transport.get_write_buffer_size() > max_buffered:
                skipped += 1
            elif _busy(socket, ws):
                # engine.io holds something for it: behind that, in its queue (bounded as above).
                if socket.queue.qsize() >= max_queued:
                    skipped += 1
                else:
                    socket.queue.put_nowait(pkt)
                    queued += 1
            else:
                transport.write(frame)
                written += 1
        self.written += written
        self.queued += queued
        self.skipped += skipped
        if skipped:
            self.on_skipped(skipped)


def _direct_transport(socket: Any, ws: Any) -> Any:
    """The asyncio transport to write a frame to for this engine.io socket, or None when the
    packet must take engine.io's path: not (yet, or fully) a websocket, closing, or compressed."""
    if ws is None or not socket.upgraded or socket.upgrading or socket.closing:
        return None
    # Private: engine.io's aiohttp wrapper keeps aiohttp's WebSocketResponse in `_sock` (set when it
    # prepares the response). `closed` turns True as soon as aiohttp starts closing, before its
    # CLOSE frame is written: no text frame may follow that. `compress` is 0 without permessage-deflate.
    response = ws._sock
    if response is None or not response.prepared or response.closed or response.compress:
        return None
    # The upgrade request's transport is the websocket's: aiohttp's WebSocketWriter writes to the
    # same one (request.transport is None once the connection is lost).
    return ws.upgrade_request.transport


def _busy(socket: Any, ws: Any) -> bool:
    """Whether engine.io holds a packet for this websocket that it has not written yet."""
    queue = socket.queue
    # Private: asyncio.Queue._unfinished_tasks counts packets put and not yet marked done (SendQueue,
    # app/engine.py, keeps the same count). engine.io's own writer marks a packet done only once it
    # runs again after taking it (on Python 3.11 wait_for takes it off the queue in a task of its
    # own), so a packet taken but not yet written counts here while the queue already looks empty.
    # `sending`: the writer (or a WebSocketSender) is inside a send (aiohttp waiting for the
    # transport to drain), holding the rest of what it took.
    return not queue.empty() or queue._unfinished_tasks > 0 or ws.sending > 0


def _tracking(base: type, registry: dict[str, Any]) -> type:
    """A subclass of engine.io's websocket class `base` that registers itself against its
    engine.io session while engine.io runs it, and counts the sends in progress."""

    class TrackedWebSocket(base):  # type: ignore[misc, valid-type]
        sending = 0
        upgrade_request: Any = None

        async def __call__(self, environ: dict) -> Any:
            # engine.io builds the websocket with its socket's bound `_websocket_handler`
            # (AsyncSocket._upgrade_websocket): its `__self__` is the session.
            sid = self.handler.__self__.sid
            self.upgrade_request = environ["aiohttp.request"]
            registry[sid] = self
            try:
                return await super().__call__(environ)
            finally:
                if registry.get(sid) is self:
                    del registry[sid]

        async def send(self, message: Any) -> None:
            self.sending += 1
            try:
                await super().send(message)
            finally:
                self.sending -= 1

    TrackedWebSocket.__qualname__ = f"Tracked{base.__name__}"
    return TrackedWebSocket
