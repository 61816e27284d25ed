"""REDIS_URL made into the server's Redis clients: one server, a master found through Redis Sentinel,
or a Redis Cluster.

`redis://…` and `rediss://…` name one server. `redis+sentinel://[user:password@]host:port[,host:port…]/<service>`
names the sentinels and the service they watch; `?db=N`, `?sentinel_username=` and `?sentinel_password=`
(for sentinels that ask for a password of their own) are the only parameters. python-socketio's own
Sentinel form puts a db before the service (`/<db>/<service>`); it is refused with a pointer to `?db=`,
so that operators learn one form, and the fan-out gets its clients from here, never from its parser.

Under Sentinel every client asks the sentinels for the master's address whenever it opens a
connection, and a connection that fails (the master died, or answers READONLY since it was
demoted) is retried once on a fresh one, which asks again: after a failover every use (boards,
queue, lease, limits, the fan-out) lands on the new master. What a command meets while no
master is elected yet is an outage like any other (DESIGN.md: completions still credit in MongoDB).

`redis+cluster://[user:password@]host:port[,host:port…]/` names some nodes of a Redis Cluster
(any of them: the client learns the rest). Every key the server uses carries the hash tag of
what it is used with (app/leaderboard/keys.py), so a script or transaction stays in one slot;
the fan-out uses sharded pub/sub (app/fanout.py). The same retry-once policy and timeouts hold.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError, ReadOnlyError, RedisError

from app.clock import now_ms
from app.leaderboard.keys import SEQ_PREFIX
from app.tasks import stopping

log = logging.getLogger(__name__)

SENTINEL_SCHEME = "redis+sentinel"
CLUSTER_SCHEME = "redis+cluster"
DEFAULT_CLUSTER_PORT = 6379
DEFAULT_SENTINEL_PORT = 26379
SENTINEL_PARAMS = ("db", "sentinel_username", "sentinel_password")
MASTER_POLL_S = 1.0
SCAN_BATCH = 1000


@dataclass(frozen=True)
class SentinelUrl:
    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sentinel_username: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)


def is_sentinel(url: str) -> bool:
    return url.partition("://")[0].lower() == SENTINEL_SCHEME


@dataclass(frozen=True)
class ClusterUrl:
    nodes: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def is_cluster(url: str) -> bool:
    return url.partition("://")[0].lower() == CLUSTER_SCHEME


def _credentials(netloc: str) -> tuple[str | None, str | None, str]:
    """`user:password@` (either part optional, percent-decoded) and the host list after it."""
    userinfo, _, hostlist = netloc.rpartition("@")
    if not userinfo:
        return None, None, hostlist
    user, colon, secret = userinfo.partition(":")
    return unquote(user) or None, unquote(secret) if colon else None, hostlist


def parse_cluster_url(url: str) -> ClusterUrl:
    """The parts of a `redis+cluster://` URL; ValueError, saying what is wrong, for a bad one."""
    form = "redis+cluster://host:port[,host:port…]/"
    parts = urlsplit(url)
    if parts.scheme.lower() != CLUSTER_SCHEME:
        raise ValueError(f"a Cluster URL starts with {CLUSTER_SCHEME}://")
    username, password, hostlist = _credentials(parts.netloc)
    if not hostlist:
        raise ValueError(f"no node address: use {form}")
    nodes = tuple(_address(host, DEFAULT_CLUSTER_PORT, "node") for host in hostlist.split(","))
    if parts.path.strip("/"):
        raise ValueError(f"a Redis Cluster has one database and no path: use {form}")
    if parts.query:
        raise ValueError(f"a Cluster URL takes no parameters: use {form}")
    return ClusterUrl(nodes=nodes, username=username, password=password)


def parse_sentinel_url(url: str) -> SentinelUrl:
    """The parts of a `redis+sentinel://` URL; ValueError, saying what is wrong, for a bad one."""
    form = "redis+sentinel://host:port[,host:port…]/<service_name>"
    parts = urlsplit(url)
    if parts.scheme.lower() != SENTINEL_SCHEME:
        raise ValueError(f"a Sentinel URL starts with {SENTINEL_SCHEME}://")
    username, password, hostlist = _credentials(parts.netloc)
    sentinels = tuple(_address(host) for host in hostlist.split(","))
    if not sentinels:
        raise ValueError(f"no sentinel address: use {form}")
    segments = parts.path.strip("/").split("/") if parts.path.strip("/") else []
    if len(segments) == 2 and segments[0].isdigit():
        raise ValueError(f"takes {form} (the db, if not 0, as ?db=N), not python-socketio's /<db>/<service> form")
    if len(segments) != 1:
        raise ValueError(f"the path must be the service name the sentinels monitor: {form}")
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(params) - set(SENTINEL_PARAMS))
    if unknown:
        raise ValueError(f"unknown parameter {', '.join(unknown)}; a Sentinel URL takes {', '.join(SENTINEL_PARAMS)}")
    db_raw = params.get("db", "0")
    if not db_raw.isdigit():
        raise ValueError(f"db must be a whole number, not {db_raw!r}")
    return SentinelUrl(sentinels=sentinels, service=unquote(segments[0]), db=int(db_raw),
                       username=username, password=password,
                       sentinel_username=params.get("sentinel_username") or None,
                       sentinel_password=params.get("sentinel_password") or None)


def _address(text: str, default_port: int = DEFAULT_SENTINEL_PORT, what: str = "sentinel") -> tuple[str, int]:
    text = text.strip()
    if text.startswith("["):  # [IPv6]:port
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        host, _, port_text = text.rpartition(":") if ":" in text else (text, "", "")
    if not host:
        raise ValueError(f"{text!r} is not a {what} address (host:port)")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{text!r} has no valid port")
    return host, int(port_text)


class _BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """The Sentinel pool (connections to the current master) that, like the one-server pool,
    waits for a free connection under a burst instead of failing at once past its size.

    Each new connection asks the sentinels where the master is; the first that finds it moved
    sets `moved`, which wakes watch_master at once rather than at its next poll: the flush lease
    holder waits an interval after taking the lease, so the read model is marked for a rebuild
    (and room seqs moved on) before anything is flushed onto the new master."""

    moved: asyncio.Event | None = None

    async def get_master_address(self):  # type: ignore[no-untyped-def]  # as redis-py declares it
        before = self.master_address
        address = await super().get_master_address()
        if before is not None and address != before and self.moved is not None:
            self.moved.set()
        return address


def _retry_once() -> Retry:
    # A pooled connection to a Redis that restarted, or to a master that died or was demoted
    # (READONLY; redis-py's Sentinel connection turns that into a ConnectionError too), fails
    # once: retry that once on a fresh connection, which under Sentinel asks for the master
    # again. Never a timeout: the command may have run, and INCR-style limits would count twice.
    return Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError, ReadOnlyError))


class RedisSource:
    """Where the clients of one REDIS_URL come from. Building one does no I/O; `aclose` closes
    the connections to the sentinels (each client closes its own pool)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.moved = asyncio.Event()  # set by a pool that found the master moved (see _BlockingSentinelPool)
        self._sentinel: Sentinel | None = None
        self._target: SentinelUrl | None = None
        self._cluster = parse_cluster_url(url) if is_cluster(url) else None
        if is_sentinel(url):
            self._target = target = parse_sentinel_url(url)
            # The sentinels' own connections: their credentials, and the socket timeouts
            # passed to each client (each query of the master's address is bounded too).
            self._sentinel = Sentinel(list(target.sentinels), sentinel_kwargs={
                "username": target.sentinel_username, "password": target.sentinel_password,
                "socket_timeout": 2.0, "socket_connect_timeout": 2.0,
            })

    @property
    def sentinel(self) -> bool:
        return self._sentinel is not None

    @property
    def cluster(self) -> bool:
        return self._cluster is not None

    def client(self, *, max_connections: int | None = None, timeout: float | None = None,
               **options: Any) -> Redis:
        """A client with its own pool. `max_connections`: a pool of that size that waits up to
        `timeout` for a free connection; `options` go to every connection (socket timeouts)."""
        if self._cluster is not None:
            return self._cluster_client(max_connections=max_connections, **options)
        pool_options: dict[str, Any] = {"retry": _retry_once(), **options}
        if max_connections is not None:
            pool_options.update(max_connections=max_connections, timeout=timeout)
        if self._sentinel is None or self._target is None:
            if max_connections is None:
                return Redis.from_url(self.url, **pool_options)
            return Redis.from_pool(BlockingConnectionPool.from_url(self.url, **pool_options))  # closed with the client
        target = self._target
        client: Redis = self._sentinel.master_for(
            target.service,
            connection_pool_class=_BlockingSentinelPool if max_connections is not None else SentinelConnectionPool,
            db=target.db, username=target.username, password=target.password, **pool_options,
        )
        if isinstance(client.connection_pool, _BlockingSentinelPool):
            client.connection_pool.moved = self.moved
        return client

    def _cluster_client(self, *, max_connections: int | None, **options: Any) -> Redis:
        # Typed as Redis for its users: RedisCluster answers the same commands (and pipelines,
        # scripts) for keys in one slot, which is all the server sends it. Each node's pool
        # holds up to `max_connections`; a node that moved or failed is found again through
        # the cluster's slot map (redis-py refreshes it on MOVED and on connection errors).
        assert self._cluster is not None
        target = self._cluster
        cluster_options = {k: v for k, v in options.items() if k in ("socket_timeout", "socket_connect_timeout")}
        client = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
            username=target.username, password=target.password, retry=_retry_once(),
            max_connections=max_connections or 100, **cluster_options,
        )
        return client  # type: ignore[return-value]  # see above

    async def shard_client(self, channel: str, **options: Any) -> Redis:
        """A one-server client to the cluster node that serves `channel`'s slot now (a sharded
        subscription lives on that node's connection). Asked again after each failure: a
        failover or a resharding moves the slot."""
        assert self._cluster is not None
        cluster = self._cluster_client(max_connections=1, **options)
        try:
            await cluster.initialize()  # type: ignore[attr-defined]  # RedisCluster's own
            node = cluster.get_node_from_key(channel)  # type: ignore[attr-defined]
        finally:
            await cluster.aclose()
        return Redis(host=node.host, port=node.port, username=self._cluster.username,
                     password=self._cluster.password, **options)

    async def master(self) -> tuple[str, int] | None:
        """The master's address the sentinels agree on now (None for one server)."""
        if self._sentinel is None or self._target is None:
            return None
        host, port = await self._sentinel.discover_master(self._target.service)
        return str(host), int(port)

    async def aclose(self) -> None:
        if self._sentinel is not None:
            with suppress(Exception):
                await self._sentinel.aclose()


async def watch_master(source: RedisSource, on_switch: Callable[[], Awaitable[None]],
                       interval_s: float = MASTER_POLL_S) -> None:
    """Polls the sentinels for the master's address; once it changed, awaits `on_switch` on the
    new master (until that succeeds). Replication is asynchronous, so a master promoted after a
    failover may lack the last writes of the one it replaces: `on_switch` has the read model
    checked against MongoDB."""
    known: tuple[str, int] | None = None
    while not stopping():
        source.moved.clear()
        try:
            address = await source.master()
            if known is None:
                known = address
            elif address != known:
                log.warning("Redis master moved from %s:%s to %s:%s; rebuilding the read model from MongoDB",
                            *known, *(address or ("?", "?")))
                await on_switch()
                known = address  # only once on_switch went through: a failed one is tried again
        except asyncio.CancelledError:
            raise
        except (RedisError, OSError) as exc:
            log.debug("sentinel poll failed: %s", exc)
        except Exception:  # noqa: BLE001 - one bad poll never ends the watch
            log.exception("sentinel poll failed")
        with suppress(TimeoutError):
            await asyncio.wait_for(source.moved.wait(), interval_s)


async def after_failover(redis: Redis, mark_lost: Callable[[], Awaitable[None]]) -> None:
    """What a master promoted by a failover may lack, put right. Its room seqs may be behind
    those of deltas already sent: each moves on to the clock's milliseconds, as a seq created
    on an empty Redis starts (app/leaderboard/flusher.py: a seq grows by at most one a flush,
    at most one every 50 ms, so it stays below the clock), and watchers see a gap and ask for
    a snapshot (PROTOCOL.md 6) rather than a seq they saw before. Its boards may lack the last
    standings: the queue's lost mark has the lease holder rebuild them from MongoDB."""
    now = now_ms()
    keys = [key async for key in redis.scan_iter(match=f"{SEQ_PREFIX}*", count=SCAN_BATCH)]
    for start in range(0, len(keys), SCAN_BATCH):
        batch = keys[start:start + SCAN_BATCH]
        seqs = await redis.mget(batch)
        # Not atomic with the flush's INCR, and need not be: a seq INCRed meanwhile is still
        # below the clock's milliseconds, so it is replaced by a higher one all the same.
        async with redis.pipeline(transaction=False) as pipe:
            for key, seq in zip(batch, seqs, strict=True):
                if seq is not None and int(seq) < now:
                    pipe.set(key, now, xx=True, keepttl=True)
            await pipe.execute()
    await mark_lost()
