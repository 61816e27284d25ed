"""create_app(settings): one aiohttp app with its Socket.IO server, stores and services.

Each resource has one cleanup context, appended in dependency order; cleanup runs in
reverse and only for what started.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from pathlib import Path
from urllib.parse import unquote

import aiohttp_cors
import socketio
from aiohttp import web
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.abuse.events import EventGuard
from app.abuse.peers import PeerLimits
from app.abuse.reads import ReadLimits
from app.actions.catalogue import Catalogue, read_catalogue_file
from app.actions.service import ActionService
from app.anticheat.behaviour import DifficultyBonus, Scorer
from app.anticheat.limits import RateLimiter
from app.anticheat.scoring import slots
from app.anticheat.suspensions import Suspensions
from app.anticheat.tokens import TokenSigner
from app.breaker import Breaker
from app.broadcast import BroadcastManager
from app.config import Settings
from app.drain import Drain
from app.embedded import EmbeddedDocumentStore, in_process_redis
from app.errors import ProtocolError
from app.fanout import RedisFanout, SocketNotifier
from app.handlers import admin, health, http, sockets, tournaments
from app.handlers.replies import http_errors
from app.leaderboard.boards import BoardStore
from app.leaderboard.feed import RoomFeed
from app.leaderboard.flusher import Flusher, FlushLoop
from app.leaderboard.lease import FlushLease
from app.leaderboard.queue import DeltaQueue
from app.leaderboard.reads import LeaderboardReads
from app.leaderboard.rebuild import rebuild_boards
from app.leaderboard.updates import BoardUpdates
from app.metrics import Metrics
from app.operators.audit import AuditTrail
from app.operators.erasure import Eraser
from app.operators.oplog import OperatorLog
from app.operators.service import OperatorService
from app.operators.stats import LiveStats, counter_values
from app.players.revocations import Revocations
from app.players.service import PlayerService
from app.players.store import PlayerStore
from app.redisconn import RedisSource, after_failover, watch_master
from app.rooms.names import tournament_board
from app.rooms.watching import WatchPolicy
from app.scores.achievements import AchievementBook
from app.scores.batching import BatchedCredits
from app.scores.reconciler import Reconciler
from app.scores.repository import ScoreRepository, open_database
from app.services import Services
from app.tasks import stop_task
from app.tournaments.service import PLACES, TournamentService
from app.tournaments.store import TournamentStore

log = logging.getLogger(__name__)

SIO = web.AppKey("sio", socketio.AsyncServer)
MONGO = web.AppKey("mongo", AsyncDatabase)
REDIS = web.AppKey("redis", Redis)
REDIS_SOURCE = web.AppKey("redis_source", RedisSource)  # set only when REDIS_URL is
QUEUE = web.AppKey("queue", DeltaQueue)
REBUILD: web.AppKey[Callable[[], Awaitable[int]]] = web.AppKey("rebuild")
FLUSH_LOOP = web.AppKey("flush_loop", FlushLoop)
DRAIN = web.AppKey("drain", Drain)
RECONCILER = web.AppKey("reconciler", Reconciler)
AUDIT = web.AppKey("audit", AuditTrail)
SCORER = web.AppKey("scorer", Scorer)  # set only when BEHAVIOUR_SCORING is on
INSTANCE = web.AppKey("instance", str)  # this process, as the lease, the audit trail and the stats name it

CLOSE_TIMEOUT_S = 2.0
FLUSH_STOP_TIMEOUT_S = 5.0
REDIS_POOL_SIZE = 256
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
ADMIN_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# The official Socket.IO browser client, from the pinned npm dependency (`make setup` runs npm ci).
VENDOR_DIR = Path(__file__).resolve().parent.parent / "node_modules" / "socket.io-client" / "dist"


async def mongo_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[http.SETTINGS]
    embedded = None
    url = settings.mongodb_url
    if url is None:
        embedded = EmbeddedDocumentStore(settings.data_dir / "documents")
        url = await embedded.start()
        log.info("MongoDB: embedded document store (SecantusDB) under %s", embedded.storage,
                 extra={"backend": "embedded"})
    else:
        log.info("MongoDB: %s", _redact(url), extra={"backend": "mongodb"})
    client, db = open_database(url, settings.mongodb_db, settings.store_timeout_ms)
    try:
        app[MONGO] = db
        await ScoreRepository(db).ensure_indexes()
        yield
    finally:
        await client.close()
        if embedded is not None:
            await embedded.stop()


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[http.SETTINGS]
    if settings.redis_url is None:
        app[REDIS] = in_process_redis()
        log.info("Redis: in-process stand-in (fakeredis), single-instance mode", extra={"backend": "fakeredis"})
    else:
        timeout = settings.store_timeout_ms / 1000
        source = app[REDIS_SOURCE] = RedisSource(settings.redis_url)
        # A blocking pool waits (up to the store timeout) for a free connection under a burst
        # of joins instead of failing at once past its size. A connection that died (a Redis
        # restart, a failover) is retried once on a fresh one (app/redisconn.py).
        app[REDIS] = source.client(max_connections=REDIS_POOL_SIZE, timeout=timeout,
                                   socket_timeout=timeout, socket_connect_timeout=timeout)
        log.info("Redis: %s", _redact(settings.redis_url),
                 extra={"backend": "redis+sentinel" if source.sentinel
                        else "redis+cluster" if source.cluster else "redis"})
    yield
    await app[REDIS].aclose()
    if REDIS_SOURCE in app:
        await app[REDIS_SOURCE].aclose()


async def services_ctx(app: web.Application) -> AsyncIterator[None]:
    settings, redis, db = app[http.SETTINGS], app[REDIS], app[MONGO]
    sio, metrics = app[SIO], app[health.METRICS]
    raw = read_catalogue_file(settings.actions_file)
    catalogue = Catalogue.from_dict(raw["actions"])
    book = AchievementBook.load(raw.get("achievements") or {})
    signer = TokenSigner(settings.secret_keys, settings.session_ttl_s)
    repo = ScoreRepository(db, settings.period_table)
    boards = BoardStore(redis, repo.periods)
    notifier = SocketNotifier(sio)
    feed = RoomFeed(redis, boards)
    breaker = Breaker()  # shared: one Redis failure on the completion path skips Redis for all
    queue = app[QUEUE] = DeltaQueue(redis, breaker)
    updates = BoardUpdates(boards, queue, notifier, breaker)
    suspensions = Suspensions(redis)
    writes = BatchedCredits(repo, max_wait_s=settings.store_timeout_ms / 1000)
    players_store = PlayerStore(db)
    # Polled about once a second; closes this instance's connections of a player once revoked.
    revocations = Revocations(redis, players_store, settings.session_ttl_s, breaker=breaker,
                              on_revoked=lambda pid, before: sockets.close_revoked(sio, pid, before))
    scorer: Scorer | None = None  # built below, once the audit trail it reads exists
    audit = app[AUDIT] = AuditTrail(
        db, instance=app[INSTANCE], retention_days=settings.audit_retention_days, enabled=settings.audit_trail,
        on_dropped=lambda count: metrics.audit_dropped.inc(count),
        on_written=lambda player_ids: scorer.touch(player_ids) if scorer else None,
    )
    if settings.behaviour_scoring:
        scorer = app[SCORER] = Scorer(trail=audit, players=db["players"], redis=redis, slot_ms=slots(catalogue))
    await audit.ensure_indexes()
    metrics.audit_backlog.set_function(lambda: audit.backlog)
    players = PlayerService(store=players_store, repo=repo, boards=boards, queue=queue, signer=signer, book=book,
                            suspensions=suspensions, revocations=revocations)
    lease = FlushLease(redis, app[INSTANCE], 2 * settings.flush_ms)
    tournament_store = TournamentStore(db)
    eraser = Eraser(db=db, repo=repo, redis=redis, store=players_store, boards=boards, queue=queue,
                    suspensions=suspensions, audit=audit, regions=settings.regions, tournaments=tournament_store)
    # Completions per second from this instance's own counter, read once a second (no cost per completion).
    live = LiveStats(redis, app[INSTANCE], outcomes=lambda: counter_values(metrics.actions),
                     connections=lambda: admin.connection_counts(sio))
    operators = OperatorService(db=db, repo=repo, players=players, store=players_store, audit=audit, eraser=eraser,
                                oplog=OperatorLog(db, instance=app[INSTANCE]), stats=live, lease=lease, queue=queue,
                                book=book, tournaments=tournament_store)
    await operators.ensure_indexes()
    await tournament_store.ensure_indexes()
    tournament_service = TournamentService(
        store=tournament_store, actions=[rule.name for rule in catalogue], regions=settings.regions,
        history_days=settings.board_history_days, book=book, unlock=repo.unlock,
        announce=updates.announce_achievement,
        # Final once every credit of its window is flushed: a live attempt finishes within two
        # store timeouts (as the reconciler's grace), then waits for a flush or two.
        settle_ms=2 * settings.store_timeout_ms + 2 * settings.flush_ms,
        award_hold_ms=2 * settings.store_timeout_ms,
    )
    # One round trip per action:start: the rate limit, the suspension check and the bonus together.
    limiter = RateLimiter(redis, breaker,
                          bonus=DifficultyBonus(redis, breaker=breaker) if settings.behaviour_scoring else None)
    services = Services(
        signer=signer,
        catalogue=catalogue,
        actions=ActionService(catalogue=catalogue, signer=signer, limiter=limiter, repo=repo, book=book,
                              updates=updates, writes=writes, audit=audit, tournaments=tournament_service),
        players=players,
        reads=LeaderboardReads(boards, tournament_readable=tournament_service.readable),
        feed=feed,
        watch=WatchPolicy(settings.regions, tournament_service.readable),
        operators=operators,
        tournaments=tournament_service,
    )
    app[http.SERVICES] = services
    # "instance" is down while it drains, so that a balancer's keep-alive probe stops sending clients here.
    app[health.PROBES] = {"redis": redis.ping, "mongodb": repo.ping, "instance": app[DRAIN].serving}
    sockets.register(sio, services, metrics, app[DRAIN])
    app[REBUILD] = lambda: rebuild_boards(repo, boards, queue, suspensions, eraser,
                                          tournaments=tournament_service.boards_kept,
                                          expire_at=tournament_service.expire_at)
    flusher = Flusher(redis, queue, boards, lease, notifier, settings.top_n)
    loop = app[FLUSH_LOOP] = FlushLoop(flusher, lease, queue, app[REBUILD], redis, settings.flush_ms,
                                       on_flush=metrics.observe_flush)
    metrics.lease_held.set_function(lambda: loop.holding)
    metrics.queue_depth.set_function(lambda: loop.queue_depth)
    metrics.queue_backlog.set_function(lambda: queue.backlog)
    try:
        await queue.ensure_group()
    except (RedisError, OSError):
        log.warning("Redis unavailable at startup; the flusher retries", exc_info=True)
    app[RECONCILER] = Reconciler(
        repo=repo, finish=services.actions.finish_pending, interval_s=settings.reconcile_interval_s,
        # Past two store timeouts a live attempt has finished or failed: what is pending then is left over.
        grace_ms=2 * settings.store_timeout_ms,
        on_finished=lambda outcome: metrics.reconciled.labels(outcome).inc(),
    )
    writes.start()
    revocations.start()
    operators.start()
    tournament_service.start()
    yield
    await tournament_service.stop()
    await operators.stop()
    await revocations.stop()
    await writes.stop()


async def audit_ctx(app: web.Application) -> AsyncIterator[None]:
    """The audit trail's writer; what is queued at the end is stored before the store closes."""
    audit = app[AUDIT]
    task = asyncio.create_task(audit.run(), name="audit-writer")
    yield
    await stop_task(task)
    await audit.close()


async def scorer_ctx(app: web.Application) -> AsyncIterator[None]:
    """Behaviour scoring (app/anticheat/behaviour.py), unless BEHAVIOUR_SCORING=0: each instance
    scores the players whose attempts its audit writer stored. Stopped before the writer's last batch."""
    scorer = app.get(SCORER)
    task = asyncio.create_task(scorer.run(), name="behaviour-scorer") if scorer else None
    yield
    await stop_task(task)


async def reconciler_ctx(app: web.Application) -> AsyncIterator[None]:
    """Finishes half-done credits on every instance (app/scores/reconciler.py)."""
    task = asyncio.create_task(app[RECONCILER].run(), name="reconciler")
    yield
    await stop_task(task)


async def flusher_ctx(app: web.Application) -> AsyncIterator[None]:
    """The flush loop runs on every instance; only the lease holder flushes. On the way out
    it flushes what is queued and gives the lease up (before the fan-out closes)."""
    loop = app[FLUSH_LOOP]
    task = asyncio.create_task(loop.run(), name="flush-loop")
    yield
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=FLUSH_STOP_TIMEOUT_S)
    if done:
        with suppress(asyncio.CancelledError):
            task.result()
    else:
        log.warning("flush loop did not stop in time; going on")
    try:
        await asyncio.wait_for(loop.stop(), FLUSH_STOP_TIMEOUT_S)
    except TimeoutError:
        log.warning("last flush did not finish in time; the next lease holder applies the queue")


async def awards_ctx(app: web.Application) -> AsyncIterator[None]:
    """Tournament awards (PROTOCOL.md 10): whichever instance holds the flush lease finishes
    the tournaments that ended, about once a second, from their final boards."""
    services, loop = app[http.SERVICES], app[FLUSH_LOOP]

    async def final_top(tournament_id: str) -> list[str]:
        return await services.reads.leaders(tournament_board(tournament_id), PLACES)

    task = asyncio.create_task(services.tournaments.run_awards(lambda: loop.holding, final_top),
                               name="tournament-awards")
    yield
    await stop_task(task)


async def master_watch_ctx(app: web.Application) -> AsyncIterator[None]:
    """Under Sentinel: once the master moved (a failover), the new one may lack the old one's
    last writes (replication is asynchronous): room seqs move on, and the queue's lost mark has
    the lease holder rebuild the read model from MongoDB, as after any loss of queued standings."""
    source, redis, queue = app.get(REDIS_SOURCE), app[REDIS], app[QUEUE]
    task = None
    if source is not None and source.sentinel:
        task = asyncio.create_task(watch_master(source, lambda: after_failover(redis, queue.mark_lost)),
                                   name="sentinel-watch")
    yield
    await stop_task(task)


async def fanout_ctx(app: web.Application) -> AsyncIterator[None]:
    """Owns the Socket.IO Redis manager's connections; closed after the last flush emitted."""
    yield
    manager = app[SIO].manager
    if isinstance(manager, RedisFanout):
        await manager.close()


# A query parameter whose name holds one of these is a credential (password=, authPassword=,
# sentinel_password=, a token, an API key, MongoDB's authMechanismProperties with an AWS session token).
_SECRET_PARAMS = ("pass", "secret", "token", "key", "credential", "mechanismproperties")


def _redact(url: str) -> str:
    """`url` for a log line: its userinfo, and the value of every query parameter that names a
    credential, replaced by ****."""
    scheme, sep, rest = url.partition("://")
    head, qmark, query = rest.partition("?")
    if "@" in head:
        # Up to the last "@": an unescaped "@" or "/" in the password stays hidden.
        head = "****@" + head.rsplit("@", 1)[1]
    if query:
        params = []
        for param in query.split("&"):
            name, eq, _value = param.partition("=")
            if eq and any(part in unquote(name).lower() for part in _SECRET_PARAMS):
                param = f"{name}=****"
            params.append(param)
        query = "&".join(params)
    return scheme + sep + head + qmark + query


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[http_errors], client_max_size=settings.max_payload_bytes)
    app[http.SETTINGS] = settings
    metrics = app[health.METRICS] = Metrics()
    drain = app[DRAIN] = Drain()
    app[INSTANCE] = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
    app[http.PEERS] = PeerLimits(settings.connections_per_ip, settings.sessions_per_ip_per_minute)
    app[http.READS] = ReadLimits(settings.http_reads_per_ip_per_s, settings.http_read_burst)
    cors_origins = "*" if "*" in settings.cors_origins else list(settings.cors_origins)
    # Both deliver a room emit to this instance's watchers through the broadcast fast path (app/broadcast.py).
    manager: BroadcastManager
    if settings.redis_url:
        timeout = settings.store_timeout_ms / 1000
        manager = RedisFanout(settings.redis_url, redis_options={
            "socket_connect_timeout": timeout, "socket_timeout": timeout,
        }, on_skipped=metrics.deltas_skipped.inc)
    else:
        manager = BroadcastManager(on_skipped=metrics.deltas_skipped.inc)
    sio = sockets.SocketServer(
        async_mode="aiohttp",
        client_manager=manager,
        cors_allowed_origins=cors_origins,
        # No client sends credentials (the token travels in `auth`), and "true" answered to any
        # origin would let every site make credentialed requests.
        cors_credentials=False,
        max_http_buffer_size=settings.max_payload_bytes,
        guard=EventGuard(settings.socket_events_per_s, settings.socket_event_burst),
        drain=drain,
        metrics=metrics,
        peers=app[http.PEERS],
        trusted_proxies=settings.trusted_proxies,
        connect_timeout_s=settings.connect_timeout_s,
        # Named loggers, not python-socketio's default: its own stderr handler bypasses the JSON log lines.
        logger=logging.getLogger("socketio"),
        engineio_logger=logging.getLogger("engineio"),
        json=sockets.PacketJson,
        serializer=sockets.JsonPacket,  # JSON packets only (PROTOCOL.md 1): see JsonPacket
    )
    sio.attach(app)
    app[SIO] = sio
    metrics.sample_transports(lambda: _transports(sio))

    app.on_shutdown.append(drain_then_close)
    app.cleanup_ctx.append(mongo_ctx)
    app.cleanup_ctx.append(redis_ctx)
    app.cleanup_ctx.append(fanout_ctx)
    app.cleanup_ctx.append(services_ctx)
    app.cleanup_ctx.append(master_watch_ctx)
    app.cleanup_ctx.append(audit_ctx)
    app.cleanup_ctx.append(scorer_ctx)
    app.cleanup_ctx.append(reconciler_ctx)
    app.cleanup_ctx.append(flusher_ctx)
    app.cleanup_ctx.append(awards_ctx)

    health.add_routes(app)
    api_routes = http.add_routes(app) + tournaments.add_routes(app)
    admin.add_routes(app)  # same-origin console only: no CORS for the operator routes
    app.router.add_get("/", _index)
    app.router.add_get("/admin", _admin)
    app.router.add_get(r"/static/vendor/{name:socket\.io\.min\.js(?:\.map)?}", _vendor)
    app.router.add_get("/static/{path:.+}", _static)
    cors = aiohttp_cors.setup(app, defaults={
        origin: aiohttp_cors.ResourceOptions(allow_headers="*", expose_headers="*")
        for origin in settings.cors_origins
    })
    for route in api_routes:
        cors.add(route)
    return app


def _transports(sio: socketio.AsyncServer) -> dict[str, float]:
    counts = {"polling": 0.0, "websocket": 0.0}
    for eio_socket in list(sio.eio.sockets.values()):
        counts["websocket" if eio_socket.upgraded else "polling"] += 1
    return counts


async def drain_then_close(app: web.Application) -> None:
    """After the listener closed: refuse new events (`unavailable`), finish those in flight
    (their acks go out), then close every connection so clients reconnect, to another
    instance behind a balancer. Bounded by DRAIN_TIMEOUT_S; the last flush and the lease
    hand-over follow in the cleanup contexts. `python -m app` runs it on SIGTERM/SIGINT
    before aiohttp's shutdown; as an on_shutdown hook it covers every other way of stopping."""
    settings, drain, metrics = app[http.SETTINGS], app[DRAIN], app[health.METRICS]
    if drain.draining:
        return
    metrics.draining.set(1)
    log.info("draining: %d events in flight, %d connections", drain.busy, len(app[SIO].eio.sockets))
    if not await drain.begin(settings.drain_timeout_s):
        log.warning("drain timeout: %d events still in flight; closing anyway", drain.busy)
    task = asyncio.ensure_future(_close_all_sockets(app[SIO]))
    done, _ = await asyncio.wait([task], timeout=3 * CLOSE_TIMEOUT_S)
    if not done:
        task.cancel()
        log.warning("socket shutdown did not finish in time; going on")


async def _close_all_sockets(sio: socketio.AsyncServer) -> None:
    if sio.eio.sockets:
        try:
            await asyncio.wait_for(sio.eio.disconnect(), CLOSE_TIMEOUT_S)
        except TimeoutError:
            # A polling client with no request pending cannot be told; drop it.
            for eio_socket in list(sio.eio.sockets.values()):
                await eio_socket.close(wait=False, abort=True)
    await sio.shutdown()


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html")


async def _admin(request: web.Request) -> web.FileResponse:
    """The operator console (PROTOCOL.md 8): a static page; every figure it shows comes from the
    API_KEY routes, so the page itself needs no key. The page holds that key in the tab, so it
    runs only its own scripts, is never framed (clickjacking) and sends no referrer."""
    return web.FileResponse(STATIC_DIR / "admin.html", headers=ADMIN_PAGE_HEADERS)


async def _static(request: web.Request) -> web.FileResponse:
    """Files under static/, and nothing else; a missing one is the protocol's not_found."""
    path = _static_file(request.match_info["path"])
    if path is None:
        raise ProtocolError("not_found", "no such file")
    return web.FileResponse(path)


def _static_file(name: str) -> Path | None:
    """The file `name` under static/, or None. A name no file can have (a NUL byte, a segment
    or a path over the file system's limits) is None too, not an error."""
    try:
        path = (STATIC_DIR / name).resolve()
        return path if path.is_relative_to(STATIC_DIR) and path.is_file() else None
    except (OSError, ValueError):  # ValueError: embedded NUL; OSError: ENAMETOOLONG and the like
        return None


async def _vendor(request: web.Request) -> web.FileResponse:
    """socket.io.min.js (and its source map) from node_modules, so the page needs nothing from elsewhere."""
    path = VENDOR_DIR / request.match_info["name"]
    if not path.is_file():
        raise ProtocolError("not_found", "the Socket.IO client is not installed: run make setup")
    return web.FileResponse(path)
