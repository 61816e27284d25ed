"""HTTP routes: sessions, leaderboards, players, the action catalogue (PROTOCOL.md 3, 6)."""

from __future__ import annotations

import secrets

from aiohttp import web

from app.abuse.peers import PeerLimits, client_ip
from app.abuse.reads import ReadLimits
from app.config import Settings
from app.errors import ProtocolError
from app.handlers.health import METRICS
from app.handlers.replies import json_body
from app.rooms.names import parse_board
from app.schemas import LeaderboardQuerySchema, SessionSchema, SuspensionSchema
from app.services import Services

SERVICES = web.AppKey("services", Services)
SETTINGS = web.AppKey("settings", Settings)
PEERS = web.AppKey("peers", PeerLimits)
READS = web.AppKey("reads", ReadLimits)


def _has_api_key(request: web.Request, settings: Settings) -> bool:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if settings.api_key is None or scheme.lower() != "bearer":
        return False
    # Headers are decoded with surrogateescape; encode the same way so odd bytes just mismatch.
    return secrets.compare_digest(key.strip().encode("utf-8", "surrogateescape"), str(settings.api_key).encode())


def _admit_read(request: web.Request) -> None:
    """A public read counts against its client address (HTTP_READS_PER_IP_PER_S), before any
    work is done for it; a request with the right API key is not limited."""
    settings = request.app[SETTINGS]
    if _has_api_key(request, settings):
        return
    ip = client_ip(request.remote, request.headers.getall("X-Forwarded-For", ()), settings.trusted_proxies)
    wait_ms = request.app[READS].wait_ms(ip)
    if wait_ms:
        request.app[METRICS].limited.labels("http_reads").inc()
        raise ProtocolError("rate_limited", "too many reads from this address", retry_after_ms=wait_ms)


def _authorized(request: web.Request, settings: Settings) -> bool:
    """A guest may create a session when guests are on, unless it sends a key that is wrong."""
    if "Authorization" in request.headers:
        return _has_api_key(request, settings)
    return settings.allow_guest_sessions


async def create_session(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    if not _authorized(request, settings):
        raise ProtocolError("unauthorized", "guest sessions are off: send Authorization: Bearer <API_KEY>")
    if "Authorization" not in request.headers:
        ip = client_ip(request.remote, request.headers.getall("X-Forwarded-For", ()), settings.trusted_proxies)
        wait_ms = request.app[PEERS].session_wait_ms(ip)
        if wait_ms:
            request.app[METRICS].limited.labels("sessions_per_ip").inc()
            raise ProtocolError("rate_limited", "too many sessions from this address", retry_after_ms=wait_ms)
    req = SessionSchema(settings.regions).load(await json_body(request))
    guest = "Authorization" not in request.headers  # past _authorized: else it is the right API key
    session = await request.app[SERVICES].players.create_session(**req, guest=guest)
    return web.json_response(session, status=201)


async def revoke_sessions(request: web.Request) -> web.Response:
    """Operator or account-service call (API_KEY): refuse every session issued to the player so far."""
    if not _has_api_key(request, request.app[SETTINGS]):
        raise ProtocolError("unauthorized", "send Authorization: Bearer <API_KEY>")
    if (await request.read()).strip() and await json_body(request) != {}:
        raise ProtocolError("invalid_payload", "send no body, or an empty JSON object")
    return web.json_response(await request.app[SERVICES].players.revoke_sessions(request.match_info["player_id"]))


def _single_query(request: web.Request) -> dict[str, str]:
    query = request.query
    repeated = [k for k in query if len(query.getall(k)) > 1]
    if repeated:
        raise ProtocolError("invalid_payload", f"query parameters given twice: {repeated}")
    # An empty period, limit or offset means its default; any other key stays, so that an
    # unknown one is refused even with an empty value.
    return {k: v for k, v in query.items() if v != "" or k not in ("period", "limit", "offset")}


async def leaderboard(request: web.Request) -> web.Response:
    _admit_read(request)
    settings = request.app[SETTINGS]
    board = parse_board(request.match_info["board"], settings.regions)
    reads = request.app[SERVICES].reads
    req = LeaderboardQuerySchema(periods=reads.periods).load(_single_query(request))
    result = await reads.get(board, req["period"], req["limit"], req["offset"], req["around"],
                             day=req.get("day"), week=req.get("week"))
    return web.json_response(result)


async def player(request: web.Request) -> web.Response:
    _admit_read(request)
    return web.json_response(await request.app[SERVICES].players.profile(request.match_info["player_id"]))


async def suspension(request: web.Request) -> web.Response:
    """Operator call (API_KEY): suspend or reinstate a player, and hide it from the boards or
    show it again (PROTOCOL.md 9); written to the operator log."""
    settings = request.app[SETTINGS]
    if not _has_api_key(request, settings):
        raise ProtocolError("unauthorized", "send Authorization: Bearer <API_KEY>")
    req = SuspensionSchema().load(await json_body(request))
    by = client_ip(request.remote, request.headers.getall("X-Forwarded-For", ()), settings.trusted_proxies)
    result = await request.app[SERVICES].operators.set_suspension(
        request.match_info["player_id"], req["suspended"], req["hidden"], by=by)
    return web.json_response(result)


async def actions(request: web.Request) -> web.Response:
    catalogue = request.app[SERVICES].catalogue
    return web.json_response(
        {
            "actions": [
                {
                    "action": rule.name,
                    "points": rule.points,
                    "min_ms": rule.min_ms,
                    "ttl_s": rule.ttl_s,
                    "difficulty": rule.difficulty,
                    "per_minute": rule.per_minute,
                }
                for rule in catalogue
            ]
        }
    )


def add_routes(app: web.Application) -> list[web.AbstractRoute]:
    return [
        app.router.add_post("/api/v1/sessions", create_session),
        # [^/]+, not aiohttp's default [^{}/]+: a name with a brace is a bad board (400) or an
        # unknown player (404), not an unknown path.
        app.router.add_get("/api/v1/leaderboards/{board:[^/]+}", leaderboard),
        app.router.add_get("/api/v1/players/{player_id:[^/]+}", player),
        app.router.add_put("/api/v1/players/{player_id:[^/]+}/suspension", suspension),
        app.router.add_post("/api/v1/players/{player_id:[^/]+}/sessions/revoke", revoke_sessions),
        app.router.add_get("/api/v1/actions", actions),
    ]
