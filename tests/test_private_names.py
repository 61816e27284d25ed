"""The private names of python-socketio the server overrides or calls, checked against the
installed version: an upgrade that renames or drops one fails here, by name, and not as a
quietly skipped override somewhere in the running server.

To lean on another private name, add a row to OVERRIDDEN, CALLED or ATTRIBUTES.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable

import socketio
from engineio import async_socket
from engineio.async_drivers import aiohttp as engineio_aiohttp
from socketio import packet

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
]

# (class, method, where we call it). Calls, or names our override relies on being called.
CALLED: list[tuple[type, str, str]] = [
    (socketio.AsyncServer, "_send_packet", "app/handlers/sockets.py: the rate_limited ack"),
    (socketio.AsyncRedisManager, "_publish", "app/fanout.py: publishing, which reconnects on its own client"),
    (socketio.AsyncRedisManager, "_listen", "app/fanout.py: the stock listen loop, which must call ours"),
    (socketio.AsyncRedisManager, "_get_redis_module", "app/fanout.py: the Redis client class for the URL"),
    (socketio.AsyncRedisManager, "_get_logger", "app/fanout.py: the manager's logger"),
]

# (make an instance, attribute, where we use it). Instance attributes, set in __init__.
ATTRIBUTES: list[tuple[Callable[[], object], str, str]] = [
    (lambda: RedisFanout("redis://127.0.0.1:1/0"), name, "app/fanout.py RedisFanout")
    for name in ("redis", "pubsub", "redis_url", "redis_options", "channel")
] + [
    (lambda: socketio.AsyncServer(async_mode="aiohttp"), "packet_class", "app/handlers/sockets.py: the ack packet"),
    (lambda: socketio.AsyncServer(async_mode="aiohttp").eio, "_async",
     "app/handlers/sockets.py SocketServer: engine.io's driver table (translate_request, websocket), replaced"),
    (lambda: socketio.AsyncServer(async_mode="aiohttp").eio, "sockets",
     "app/handlers/sockets.py SocketServer.close_transport: engine.io's sessions by sid"),
    (lambda: async_socket.AsyncSocket(socketio.AsyncServer(async_mode="aiohttp").eio, "sid"), "queue",
     "app/handlers/sockets.py SocketServer.close_transport: None put there ends a websocket's writer"),
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
