"""Fan-out to Socket.IO rooms on every instance, through python-socketio's Redis manager."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import suppress

import socketio

from app.broadcast import MAX_BUFFERED_BYTES, MAX_QUEUED_PACKETS, BroadcastManager
from app.tasks import stop_task, stopping

LISTEN_RETRY_MAX_S = 2.0


class SocketNotifier:
    """Emits through the Socket.IO client manager: with Redis, to watchers on every instance."""

    def __init__(self, sio: socketio.AsyncServer) -> None:
        self._sio = sio

    async def to_room(self, room: str, event: str, payload: dict) -> None:
        await self._sio.emit(event, payload, room=room)


class RedisFanout(socketio.AsyncRedisManager, BroadcastManager):
    """The Redis manager, resubscribing within LISTEN_RETRY_MAX_S after Redis comes back, and
    delivering to this instance's recipients through the broadcast fast path.

    Local delivery: AsyncPubSubManager._handle_emit (for this instance's own emits and for
    those other instances publish) calls `super().emit`, which in this class's MRO is
    BroadcastManager.emit (RedisFanout, AsyncRedisManager, AsyncPubSubManager, BroadcastManager,
    AsyncManager): every instance frames each delta once for its own watchers.

    The stock listener doubles its wait after each failure up to 60 s, so deltas (which
    reach even local watchers through the subscription) stayed away for up to a minute
    after an outage. Each reconnect also closes the client it replaces. Publishing is
    bounded by the store timeout (redis_options), so an emit never hangs on a Redis that
    stopped answering.
    """

    def __init__(self, url: str, *, redis_options: dict | None = None,
                 on_skipped: Callable[[int], None] = lambda count: None,
                 max_buffered_bytes: int = MAX_BUFFERED_BYTES, max_queued_packets: int = MAX_QUEUED_PACKETS) -> None:
        # AsyncRedisManager's own, which (through AsyncPubSubManager's super().__init__()) runs
        # BroadcastManager.__init__ with its defaults; this manager's settings follow.
        socketio.AsyncRedisManager.__init__(self, url, redis_options=redis_options)
        self._init_broadcast(on_skipped, max_buffered_bytes, max_queued_packets)

    async def _redis_listen_with_retries(self) -> AsyncIterator[dict]:
        retry_s = 0.25
        while not stopping():
            # A client of its own: a reconnect in _publish must not swap it out under us. No read
            # timeout on it: a quiet channel is not a dead one.
            options = {k: v for k, v in self.redis_options.items() if k != "socket_timeout"}
            redis = self._get_redis_module().Redis.from_url(self.redis_url, **options)
            self.pubsub = pubsub = redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                retry_s = 0.25
                async for message in pubsub.listen():
                    yield message
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure means: reconnect
                self._get_logger().warning("fan-out subscription lost (%s); retrying in %.2f s", exc, retry_s)
            finally:
                with suppress(Exception):
                    await pubsub.aclose()
                with suppress(Exception):
                    await redis.aclose()
            await asyncio.sleep(retry_s)
            retry_s = min(retry_s * 2, LISTEN_RETRY_MAX_S)

    async def close(self) -> None:
        """Stop listening and close the connections (python-socketio has no call for it)."""
        listener = getattr(self, "thread", None)
        if listener is not None:
            await stop_task(listener)
        if self.redis is not None:
            with suppress(Exception):
                await self.redis.aclose()
