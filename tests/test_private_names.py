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
    (socketio.AsyncRedisManager, "_get_redis_module", "app/fanout.py: the Redis client class for the URL"),
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
    for name in ("redis", "pubsub", "redis_url", "redis_options", "channel")
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
