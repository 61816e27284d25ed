"""The private names of python-socketio, python-engineio, aiohttp and asyncio the server
overrides or calls, checked against the installed versions: an upgrade that renames or drops
one fails here, by name, and not as a quietly skipped override (or, for the broadcast fast
path, a quietly lost order or bound) somewhere in the running server.

To lean on another private name, add a row to OVERRIDDEN, CALLED or ATTRIBUTES.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable

import engineio
import socketio
from aiohttp import web
from engineio import async_socket
from engineio.async_drivers import aiohttp as engineio_aiohttp
from socketio import async_pubsub_manager, packet

from app.broadcast import BroadcastManager
from app.fanout import RedisFanout

# (class, method, its parameters as we override it, where we override it). Our override takes
# the parameters positionally, so a changed signature breaks it as surely as a missing name.
OVERRIDDEN: list[tuple[type, str, tuple[str, ...], str]] = [
    (socketio.AsyncServer, "_handle_event_internal", ("self", "server", "sid", "eio_sid", "data", "namespace", "id"),
     "app/handlers/sockets.py SocketServer: every client event through the rate limit and the drain"),
    (socketio.AsyncServer, "_handle_eio_message", ("self", "eio_sid", "data"),
     "app/handlers/sockets.py SocketServer: binary packets refused before python-socketio buffers them"),
    (socketio.AsyncServer, "_handle_eio_connect", ("self", "eio_sid", "environ"),
     "app/handlers/sockets.py SocketServer: engine.io transports counted and timed per address"),
    (socketio.AsyncServer, "_handle_eio_disconnect", ("self", "eio_sid", "reason"),
     "app/handlers/sockets.py SocketServer: engine.io transports counted and timed per address"),
    (socketio.AsyncRedisManager, "_redis_listen_with_retries", ("self",),
     "app/fanout.py RedisFanout: resubscribe within seconds after a Redis outage"),
    (async_pubsub_manager.AsyncPubSubManager, "_publish", ("self", "data"),
     "app/fanout.py RedisFanout: SPUBLISH (sharded pub/sub) on a Redis Cluster, the manager's publish hook"),
    (socketio.AsyncRedisManager, "_redis_connect", ("self",),
     "app/fanout.py RedisFanout: the publish client from REDIS_URL's one form (app/redisconn.py), "
     "never python-socketio's own Sentinel parser"),
    (packet.Packet, "decode", ("self", "encoded_packet"),
     "app/handlers/sockets.py JsonPacket: refuses binary and undecodable packets; its result is the attachments"),
    (engineio_aiohttp.WebSocket, "wait", ("self",),
     "app/handlers/sockets.py CheckedWebSocket: text frames checked before engine.io decodes them"),
    (engineio_aiohttp.WebSocket, "__call__", ("self", "environ"),
     "app/broadcast.py TrackedWebSocket: registers the websocket against its engine.io session while it runs"),
    (engineio_aiohttp.WebSocket, "send", ("self", "message"),
     "app/broadcast.py TrackedWebSocket: counts the writer's sends in progress (a busy writer keeps the queue path)"),
    (socketio.AsyncManager, "emit",
     ("self", "event", "data", "namespace", "room", "skip_sid", "callback", "to", "kwargs"),
     "app/broadcast.py BroadcastManager: the fast path, for this instance's recipients"),
]

# (class, method, where we call it). Calls, or names our override relies on being called.
CALLED: list[tuple[type, str, str]] = [
    (socketio.AsyncServer, "_send_packet", "app/handlers/sockets.py: the rate_limited ack"),
    (socketio.AsyncRedisManager, "_publish", "app/fanout.py: publishing, which reconnects on its own client"),
    (socketio.AsyncRedisManager, "_listen", "app/fanout.py: the stock listen loop, which must call ours"),
    (socketio.AsyncRedisManager, "_get_logger", "app/fanout.py: the manager's logger"),
    (async_pubsub_manager.AsyncPubSubManager, "_handle_emit",
     "app/fanout.py RedisFanout: local delivery of every emit, through super().emit = BroadcastManager.emit"),
    (engineio.AsyncServer, "_service_task",
     "app/broadcast.py: ping timeouts found without a send (the queue path puts packets without AsyncSocket.send)"),
    (async_socket.AsyncSocket, "_websocket_handler",
     "app/broadcast.py TrackedWebSocket: engine.io hands it, bound, to its websocket; __self__ is the session"),
]

# (make an instance, attribute, where we use it). Instance attributes, set in __init__.
ATTRIBUTES: list[tuple[Callable[[], object], str, str]] = [
    (lambda: RedisFanout("redis://127.0.0.1:1/0"), name, "app/fanout.py RedisFanout")
    for name in ("redis", "pubsub", "redis_options", "channel", "connected")
] + [
    (lambda: socketio.AsyncServer(async_mode="aiohttp"), "packet_class", "app/handlers/sockets.py: the ack packet"),
    (lambda: socketio.AsyncServer(async_mode="aiohttp").eio, "_async",
     "app/handlers/sockets.py SocketServer: engine.io's driver table (translate_request, websocket), replaced"),
    (lambda: socketio.AsyncServer(async_mode="aiohttp").eio, "_async",
     "app/broadcast.py BroadcastManager.initialize: the websocket class wrapped to track each session's websocket"),
    (lambda: socketio.AsyncServer(async_mode="aiohttp").eio, "sockets",
     "app/handlers/sockets.py SocketServer.close_transport: engine.io's sessions by sid"),
    (lambda: async_socket.AsyncSocket(socketio.AsyncServer(async_mode="aiohttp").eio, "sid"), "queue",
     "app/handlers/sockets.py SocketServer.close_transport: None put there ends a websocket's writer"),
    (lambda: async_socket.AsyncSocket(socketio.AsyncServer(async_mode="aiohttp").eio, "sid"), "queue",
     "app/broadcast.py: the queue path, packets put there as engine.io's send does (its writer or poll takes them)"),
] + [
    (lambda: async_socket.AsyncSocket(socketio.AsyncServer(async_mode="aiohttp").eio, "sid"), name,
     "app/broadcast.py: which path a recipient takes (a websocket fully upgraded, not closing)")
    for name in ("sid", "upgraded", "upgrading", "closing", "closed")
] + [
    (lambda: engineio_aiohttp.WebSocket(None, None), name,
     "app/broadcast.py: the handler engine.io gave it (its session), and aiohttp's WebSocketResponse")
    for name in ("handler", "_sock")
] + [
    (lambda: web.WebSocketResponse(), name, "app/broadcast.py: closing or compressed websockets keep aiohttp's path")
    for name in ("prepared", "closed", "compress")
] + [
    (lambda: asyncio.Queue(), "_unfinished_tasks",
     "app/broadcast.py _busy: a packet engine.io's writer took off its queue and has not written yet"),
]


async def test_the_private_names_the_server_leans_on_are_still_there(redis_proc) -> None:
    missing = []
    for cls, name, params, where in OVERRIDDEN:
        method = getattr(cls, name, None)
        if not callable(method):
            missing.append(f"{cls.__qualname__}.{name} is gone ({where})")
        elif tuple(inspect.signature(method).parameters) != params:
            missing.append(f"{cls.__qualname__}.{name}{inspect.signature(method)} no longer takes {params} ({where})")
    for cls, name, where in CALLED:
        if not callable(getattr(cls, name, None)):
            missing.append(f"{cls.__qualname__}.{name} is gone ({where})")
    for make, name, where in ATTRIBUTES:
        instance = make()
        if not hasattr(instance, name):
            missing.append(f"{type(instance).__qualname__}().{name} is gone ({where})")
    if "self._websocket_handler" not in inspect.getsource(async_socket.AsyncSocket._upgrade_websocket):
        missing.append("AsyncSocket._upgrade_websocket no longer hands its websocket self._websocket_handler "
                       "(app/broadcast.py TrackedWebSocket finds the session through it)")
    # BroadcastManager.emit must be what the Redis manager's local delivery reaches.
    mro = RedisFanout.__mro__
    if mro.index(BroadcastManager) != mro.index(async_pubsub_manager.AsyncPubSubManager) + 1:
        missing.append("BroadcastManager no longer follows AsyncPubSubManager in RedisFanout's MRO "
                       "(its _handle_emit's super().emit would skip the fast path)")
    if "self._redis_connect()" not in inspect.getsource(socketio.AsyncRedisManager._publish):
        missing.append("AsyncRedisManager._publish no longer connects through _redis_connect "
                       "(app/fanout.py RedisFanout gives it the client for REDIS_URL there)")
    if "super().emit(" not in inspect.getsource(async_pubsub_manager.AsyncPubSubManager._handle_emit):
        missing.append("AsyncPubSubManager._handle_emit no longer delivers through super().emit (app/fanout.py)")
    driver = socketio.AsyncServer(async_mode="aiohttp").eio._async
    for key in ("translate_request", "websocket"):
        if key not in driver:
            missing.append(f"engine.io's aiohttp driver table has no {key!r} (app/handlers/sockets.py SocketServer)")

    # Our subclasses' overrides must be the ones python-socketio runs: the stock listen loop goes
    # through _redis_listen_with_retries (ours sets `pubsub` once subscribed), and the manager keeps
    # its listener task in `thread`, which RedisFanout.close cancels.
    manager = RedisFanout(redis_proc.url)
    socketio.AsyncServer(async_mode="aiohttp", client_manager=manager)  # gives the manager its server
    manager.initialize()
    try:
        if not isinstance(getattr(manager, "thread", None), asyncio.Task):
            missing.append("AsyncRedisManager.initialize no longer keeps its listener task in `thread` "
                           "(app/fanout.py RedisFanout.close cancels it)")
        for _ in range(200):
            if manager.pubsub is not None and manager.pubsub.subscribed:
                break
            await asyncio.sleep(0.01)
        else:
            missing.append("the listener never subscribed through RedisFanout._redis_listen_with_retries "
                           "(AsyncRedisManager._listen no longer calls it?)")
    finally:
        await manager.close()
    assert not missing, "python-socketio changed under the server:\n  " + "\n  ".join(missing)


# app/engine.py (leaner engine.io sessions) and what app/handlers/sockets.py does to set them up.
ENGINE_OVERRIDDEN: list[tuple[type, str, tuple[str, ...], str]] = [
    (socketio.AsyncServer, "_engineio_server_class", ("self",),
     "app/handlers/sockets.py SocketServer: engine.io's server is app/engine.py Engine"),
    (engineio.AsyncServer, "create_queue", ("self", "args", "kwargs"), "app/engine.py Engine: a SendQueue per session"),
    (async_socket.AsyncSocket, "schedule_ping", ("self",), "app/engine.py LeanSocket: PINGs from one shared timer"),
    (async_socket.AsyncSocket, "_websocket_handler", ("self", "ws"),
     "app/engine.py LeanSocket: the websocket loop with no task of its own while idle"),
    (async_socket.AsyncSocket, "close", ("self", "wait", "abort", "reason"),
     "app/engine.py LeanSocket: a closed websocket session's writer stopped"),
    (engineio_aiohttp.WebSocket, "__call__", ("self", "environ"),
     "app/handlers/sockets.py CheckedWebSocket: no permessage-deflate, the handshake's environ emptied"),
]
ENGINE_ATTRIBUTES: list[tuple[Callable[[], object], str, str]] = [
    (lambda: async_socket.AsyncSocket(socketio.AsyncServer(async_mode="aiohttp").eio, "sid"), name,
     "app/engine.py LeanSocket: engine.io's session state, read and set as engine.io's own loop does")
    for name in ("server", "queue", "last_ping", "connected", "upgrading", "upgraded", "closing", "closed")
] + [
    (lambda: socketio.AsyncServer(async_mode="aiohttp").eio, name, "app/engine.py: engine.io's settings and sessions")
    for name in ("ping_interval", "ping_timeout", "max_http_buffer_size", "reason", "logger", "sockets")
] + [
    (lambda: socketio.AsyncServer(async_mode="aiohttp"), "environ",
     "app/handlers/sockets.py SocketServer._handle_eio_connect: the environ kept per session, replaced by a small one"),
    (lambda: engineio_aiohttp.WebSocket(None, None), "server", "app/handlers/sockets.py CheckedWebSocket.__call__"),
]
# (function, what its source must hold, in this order, and why).
ENGINE_SOURCES: list[tuple[Callable, tuple[str, ...], str]] = [
    (engineio.AsyncServer._handle_connect,
     ("async_socket.AsyncSocket(self, sid)", "self._trigger_event('connect'", "s.schedule_ping()",
      "s.handle_get_request(environ)"),
     "app/engine.py Engine.adopt: the session is an AsyncSocket, adopted at its connect event, before its "
     "first PING is scheduled and its websocket runs"),
    (engineio.base_socket.BaseSocket.__init__, ("self.server.create_queue()",),
     "app/engine.py Engine.create_queue: the session's queue"),
    (async_socket.AsyncSocket.receive, ("self.schedule_ping()",),
     "app/engine.py LeanSocket: each PONG schedules the next"),
    (async_socket.AsyncSocket.schedule_ping, ("self._send_ping",),
     "app/engine.py LeanSocket.ping: the same steps as engine.io's _send_ping, after its sleep"),
    (engineio_aiohttp.WebSocket.__call__,
     ("WebSocketResponse(", "max_msg_size=self.server.max_http_buffer_size", "await self._sock.prepare(request)",
      "await self.handler(self)", "return self._sock"),
     "app/handlers/sockets.py CheckedWebSocket.__call__: the same steps as engine.io's wrapper"),
    (socketio.AsyncServer._handle_eio_connect, ("self.environ[eio_sid] = environ",),
     "app/handlers/sockets.py SocketServer._handle_eio_connect: replaces what python-socketio keeps"),
    (socketio.AsyncServer._handle_connect, ("self.environ[eio_sid]",),
     "app/handlers/sockets.py: the connect handler gets the environ python-socketio keeps"),
]


def test_the_engine_io_internals_the_lean_sessions_lean_on_are_still_there() -> None:
    from app.engine import LeanSocket

    missing = []
    for cls, name, params, where in ENGINE_OVERRIDDEN:
        method = getattr(cls, name, None)
        if not callable(method):
            missing.append(f"{cls.__qualname__}.{name} is gone ({where})")
        elif tuple(inspect.signature(method).parameters) != params:
            missing.append(f"{cls.__qualname__}.{name}{inspect.signature(method)} no longer takes {params} ({where})")
    for make, name, where in ENGINE_ATTRIBUTES:
        instance = make()
        if not hasattr(instance, name):
            missing.append(f"{type(instance).__qualname__}().{name} is gone ({where})")
    for function, needles, where in ENGINE_SOURCES:
        source = inspect.getsource(function)
        found = [source.find(needle) for needle in needles]
        if -1 in found or found != sorted(found):
            missing.append(f"{function.__qualname__} no longer holds {needles} in that order ({where})")
    # Engine.adopt switches an AsyncSocket's class: LeanSocket must add no state of its own.
    socket = async_socket.AsyncSocket(socketio.AsyncServer(async_mode="aiohttp").eio, "sid")
    socket.__class__ = LeanSocket
    plain = async_socket.AsyncSocket(socket.server, "s")
    if "__slots__" in vars(LeanSocket) or vars(socket).keys() != vars(plain).keys():
        missing.append("LeanSocket is no longer a plain AsyncSocket with methods added (app/engine.py Engine.adopt)")
    assert not missing, "python-engineio changed under the server:\n  " + "\n  ".join(missing)
