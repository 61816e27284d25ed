"""Socket.IO events: connect and rooms, actions, leaderboard reads (PROTOCOL.md 4-6)."""

from __future__ import annotations

import json
import logging

import socketio
from socketio import packet
from socketio.exceptions import ConnectionRefusedError as Refused

from app.abuse.events import EventGuard
from app.abuse.peers import PeerLimits, client_ip
from app.anticheat.tokens import SessionClaims
from app.drain import Drain
from app.errors import ProtocolError, outage_as_unavailable
from app.handlers.replies import acked
from app.metrics import Metrics
from app.rooms.names import home_rooms, parse_board
from app.schemas import ActionCompleteSchema, ActionStartSchema, LeaderboardGetSchema, RoomSchema
from app.services import Services

log = logging.getLogger(__name__)


# "*" too: python-socketio looks a handler up by the event's name first, so a client event named "*"
# reached the catch-all handler without its name in front of the arguments (and got no ack).
RESERVED_EVENTS = frozenset({"connect", "disconnect", "connect_error", "disconnecting", "newListener", "removeListener",
                             "*"})


class PacketJson:
    """engine.io's JSON, but an integer literal over 100 characters is read as a float.

    python-socketio refuses such literals (int() of a long digit string is slow) by
    dropping the whole packet, so the event was never acknowledged; as a float (inf past
    1e308) every schema refuses it as invalid_payload.
    """

    @staticmethod
    def dumps(*args: object, **kwargs: object) -> str:
        return json.dumps(*args, **kwargs)

    @staticmethod
    def loads(*args: object, **kwargs: object) -> object:
        kwargs.setdefault("parse_int", lambda digits: int(digits) if len(digits) <= 100 else float(digits))
        return json.loads(*args, **kwargs)


class SocketServer(socketio.AsyncServer):
    """An AsyncServer that holds every client event to the per-connection rate limit, and
    never hands one to a lifecycle handler.

    python-socketio dispatches an event packet named "connect" or "disconnect" to the
    connect and disconnect handlers; a client could re-run connect or fake a disconnect.
    Such names, and names that are not strings, go to the catch-all handler instead,
    which answers invalid_payload.
    """

    def __init__(self, *args: object, guard: EventGuard, drain: Drain, metrics: Metrics, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.guard = guard
        self._drain = drain
        self._metrics = metrics

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
                await self._send_packet(eio_sid, self.packet_class(packet.ACK, namespace=namespace, id=id, data=[reply]))
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

    def __init__(self, player: SessionClaims | None, transport: str, ip: str) -> None:
        self.player = player
        self.transport = transport
        self.ip = ip
        self.home: set[str] = set(home_rooms(player.player_id, player.region, player.guild)) if player else set()
        self.watched: set[str] = set()

    @property
    def role(self) -> str:
        return "player" if self.player else "spectator"


def register(sio: SocketServer, services: Services, metrics: Metrics, drain: Drain, peers: PeerLimits,
             trust_proxy: bool) -> None:
    async def connection(sid: str) -> Connection:
        return (await sio.get_session(sid))["conn"]

    async def player_of(sid: str) -> SessionClaims:
        conn = await connection(sid)
        if conn.player is None:
            raise ProtocolError("not_a_player", "connect with a session token to play")
        return conn.player

    @sio.event
    async def connect(sid: str, environ: dict, auth: object = None) -> None:
        player = None
        if auth not in (None, {}):
            token = auth.get("token") if isinstance(auth, dict) else None
            try:
                player = services.signer.read_session(token)
            except ProtocolError as exc:
                raise Refused(exc.code) from None
        if drain.draining:
            raise Refused("unavailable")
        request = environ.get("aiohttp.request")
        ip = client_ip(request.remote if request else None, environ.get("HTTP_X_FORWARDED_FOR"), trust_proxy)
        if not peers.open_connection(ip):
            metrics.limited.labels("connections_per_ip").inc()
            raise Refused("rate_limited")
        conn = Connection(player, sio.transport(sid), ip)
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
        peers.close_connection(conn.ip)
        metrics.connections.labels(conn.role).dec()

    @sio.on("watch")
    @acked("watch", metrics, drain)
    async def watch(sid: str, data: object) -> dict:
        room = RoomSchema().load(data)["room"]
        conn = await connection(sid)
        viewer_guild = conn.player.guild if conn.player else None
        counts = services.watch.check(room, viewer_guild, conn.watched, conn.home)
        # Join before reading: a delta racing the snapshot then arrives with a higher seq
        # instead of being missed.
        await sio.enter_room(sid, room)
        try:
            with outage_as_unavailable("the leaderboard store"):
                snapshot = await services.feed.snapshot(room)
        except Exception:
            if not counts and room not in conn.watched and room not in conn.home:
                await sio.leave_room(sid, room)
            raise
        if counts:
            conn.watched.add(room)
        return {"room": room, "snapshot": snapshot}

    @sio.on("unwatch")
    @acked("unwatch", metrics, drain)
    async def unwatch(sid: str, data: object) -> dict:
        room = RoomSchema().load(data)["room"]
        services.watch.check_name(room)
        conn = await connection(sid)
        if room in conn.watched:
            conn.watched.discard(room)
            if room not in conn.home:
                await sio.leave_room(sid, room)
        return {}

    @sio.on("action:start")
    @acked("action:start", metrics, drain)
    async def action_start(sid: str, data: object) -> dict:
        req = ActionStartSchema().load(data)
        player = await player_of(sid)
        try:
            return {"challenge": await services.actions.start(player, req["action"])}
        except ProtocolError as exc:
            metrics.rejected.labels("start", exc.code).inc()
            raise

    @sio.on("action:complete")
    @acked("action:complete", metrics, drain)
    async def action_complete(sid: str, data: object) -> dict:
        req = ActionCompleteSchema().load(data)
        player = await player_of(sid)
        try:
            result = await services.actions.complete(player, req["token"], req["proof"])
        except ProtocolError as exc:
            metrics.actions.labels(exc.code).inc()
            metrics.rejected.labels("complete", exc.code).inc()
            raise
        metrics.actions.labels("duplicate" if result["duplicate"] else "credited").inc()
        return result

    @sio.on("leaderboard:get")
    @acked("leaderboard:get", metrics, drain)
    async def leaderboard_get(sid: str, data: object) -> dict:
        req = LeaderboardGetSchema().load(data)
        board = parse_board(req["board"], services.watch.regions)
        return await services.reads.get(board, req["period"], req["limit"], req["offset"], req["around"])

    @sio.on("*")
    async def unknown_event(event: str, sid: str, *args: object) -> dict:
        metrics.events.labels("unknown", "invalid_payload").inc()
        return {"ok": False, "error": {"code": "invalid_payload", "message": f"unknown event {str(event)[:64]!r}"}}
