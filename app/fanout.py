"""Fan-out to Socket.IO rooms on every instance, through python-socketio's Redis manager; on a
Redis Cluster through sharded pub/sub (SPUBLISH / SSUBSCRIBE, Redis 7), which python-socketio's
manager does not speak: RedisFanout swaps it in at AsyncPubSubManager's two hooks, `_publish`
and `_listen` (through `_redis_listen_with_retries`, which `_listen` reads)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import suppress

import socketio
from redis.asyncio import Redis

from app.broadcast import MAX_BUFFERED_BYTES, MAX_QUEUED_PACKETS, BroadcastManager
from app.redisconn import RedisSource
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

    Both its clients (publish, subscribe) come from app/redisconn.py, for every REDIS_URL form:
    under Sentinel they find the master through the sentinels and follow it across a failover.
    On a Redis Cluster, plain PUBLISH would be copied to every node of the cluster; the channel
    is a sharded one instead, served by the node that holds its slot: SPUBLISH through the
    cluster client, SSUBSCRIBE on a connection to that node, found again after each failure.
    """

    redis: Redis | None  # AsyncRedisManager's publish client, set in __init__ and by _redis_connect

    def __init__(self, url: str, *, redis_options: dict | None = None,
                 on_skipped: Callable[[int], None] = lambda count: None,
                 max_buffered_bytes: int = MAX_BUFFERED_BYTES, max_queued_packets: int = MAX_QUEUED_PACKETS) -> None:
        # AsyncRedisManager's own, which (through AsyncPubSubManager's super().__init__()) runs
        # BroadcastManager.__init__ with its defaults; this manager's settings follow.
        socketio.AsyncRedisManager.__init__(self, url, redis_options=redis_options)
        self._init_broadcast(on_skipped, max_buffered_bytes, max_queued_packets)
        self._source = RedisSource(url)

    def _redis_connect(self) -> None:
        # Overridden: the stock one parses the URL itself, and takes Sentinel only in
        # python-socketio's own form (/<db>/<service>); REDIS_URL has one form, read by
        # app/redisconn.py. The stock _publish calls this after each failed publish: one client
        # is enough, since its pool replaces a failed connection by itself (under Sentinel, on
        # the current master), and a new client each time would leave the old one's pool open.
        # The subscription has its own client (_redis_listen_with_retries).
        if self.redis is None:
            self.redis = self._source.client(**self.redis_options)
        self.connected = True

    async def _publish(self, data: object) -> object:
        # Overridden for a cluster only (AsyncPubSubManager's hook for every message to the other
        # instances): the stock one sends PUBLISH. As the stock one, two attempts, then logged.
        if not self._source.cluster:
            return await super()._publish(data)
        for attempt in range(2):
            try:
                self._redis_connect()
                assert self.redis is not None
                return await self.redis.spublish(self.channel, self.json.dumps(data))
            except Exception as exc:  # noqa: BLE001 - as the stock one: an emit never raises for the fan-out
                self._get_logger().error("cannot publish to the cluster (%s)%s", exc,
                                         "; retrying" if attempt == 0 else "; giving up")
        return None

    async def _redis_listen_with_retries(self) -> AsyncIterator[dict]:
        retry_s = 0.25
        while not stopping():
            # A client of its own: a reconnect in _publish must not swap it out under us. No read
            # timeout on it: a quiet channel is not a dead one.
            options = {k: v for k, v in self.redis_options.items() if k != "socket_timeout"}
            redis: Redis | None = None
            pubsub = None
            try:
                if self._source.cluster:
                    redis = await self._source.shard_client(self.channel, **options)
                else:
                    redis = self._source.client(**options)
                self.pubsub = pubsub = redis.pubsub(ignore_subscribe_messages=True)
                if self._source.cluster:
                    await pubsub.ssubscribe(self.channel)
                else:
                    await pubsub.subscribe(self.channel)
                retry_s = 0.25
                async for message in pubsub.listen():
                    if message.get("type") == "smessage":
                        # The stock _listen passes on type "message" only; the data is the same.
                        message = {**message, "type": "message"}
                    yield message
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure means: reconnect
                self._get_logger().warning("fan-out subscription lost (%s); retrying in %.2f s", exc, retry_s)
            finally:
                if pubsub is not None:
                    with suppress(Exception):
                        await pubsub.aclose()
                if redis is not None:
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
        await self._source.aclose()
