"""Operator routes (PROTOCOL.md 9), all behind `Authorization: Bearer <API_KEY>`.

The key is checked before anything else, path and body included: without it every path
under /api/v1/admin/ answers 401, one no route serves as well (only with the key is an
unknown path 404, a wrong method 405). The suspension route sits in app/handlers/http.py.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import socketio
from aiohttp import web

from app.abuse.peers import client_ip
from app.errors import ProtocolError
from app.handlers.http import SERVICES, SETTINGS, _has_api_key
from app.operators.stats import Connections, no_connections
from app.schemas import AdminPageSchema, NoQuerySchema

PREFIX = "/api/v1/admin/"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# path pattern -> methods served, for the fallback's 405.
_ROUTES: dict[re.Pattern, tuple[str, ...]] = {
    re.compile(r"^/api/v1/admin/players/[^/]+/actions$"): ("GET",),
    re.compile(r"^/api/v1/admin/players/[^/]+/export$"): ("GET",),
    re.compile(r"^/api/v1/admin/players/[^/]+$"): ("DELETE",),
    re.compile(r"^/api/v1/admin/suspects$"): ("GET",),
    re.compile(r"^/api/v1/admin/stats$"): ("GET",),
}


def require_api_key(request: web.Request) -> None:
    if not _has_api_key(request, request.app[SETTINGS]):
        raise ProtocolError("unauthorized", "send Authorization: Bearer <API_KEY>")


def operator_address(request: web.Request) -> str:
    """The operator's address, as the limits would see it (for the operator log)."""
    settings = request.app[SETTINGS]
    return client_ip(request.remote, request.headers.getall("X-Forwarded-For", ()), settings.trusted_proxies)


def _query(request: web.Request) -> dict[str, str]:
    query = request.query
    repeated = [k for k in query if len(query.getall(k)) > 1]
    if repeated:
        raise ProtocolError("invalid_payload", f"query parameters given twice: {repeated}")
    # An empty limit or cursor means its default (the first page), as in the leaderboard query.
    return {k: v for k, v in query.items() if v != "" or k not in ("limit", "cursor")}


def operator(handler: Handler) -> Handler:
    """The key first; then the handler."""
    async def checked(request: web.Request) -> web.StreamResponse:
        require_api_key(request)
        return await handler(request)

    checked.__name__ = handler.__name__
    checked.__doc__ = handler.__doc__
    return checked


@operator
async def actions(request: web.Request) -> web.Response:
    page = AdminPageSchema().load(_query(request))
    result = await request.app[SERVICES].operators.actions(
        request.match_info["player_id"], page["limit"], page["cursor"], by=operator_address(request))
    return web.json_response(result)


@operator
async def suspects(request: web.Request) -> web.Response:
    page = AdminPageSchema().load(_query(request))
    return web.json_response(await request.app[SERVICES].operators.suspects(page["limit"], page["cursor"]))


@operator
async def export(request: web.Request) -> web.Response:
    NoQuerySchema().load(_query(request))
    result = await request.app[SERVICES].operators.export(request.match_info["player_id"],
                                                         by=operator_address(request))
    return web.json_response(result)


@operator
async def erase(request: web.Request) -> web.Response:
    NoQuerySchema().load(_query(request))
    result = await request.app[SERVICES].operators.erase(request.match_info["player_id"],
                                                        by=operator_address(request))
    return web.json_response(result)


@operator
async def stats(request: web.Request) -> web.Response:
    NoQuerySchema().load(_query(request))
    return web.json_response(await request.app[SERVICES].operators.stats())


@operator
async def fallback(request: web.Request) -> web.Response:
    """Any other path or method under the prefix, once the key is right."""
    for pattern, methods in _ROUTES.items():
        if pattern.match(request.path):
            raise web.HTTPMethodNotAllowed(request.method, list(methods))
    raise ProtocolError("not_found", "no such operator route")


async def connection_counts(sio: socketio.AsyncServer) -> Connections:
    """This instance's open Socket.IO connections by role and transport (after upgrades).
    Public python-socketio API only: the namespace's participants (room None holds every
    connected client), their sessions, and engine.io's transport of each."""
    counts = no_connections()
    for sid, eio_sid in list(sio.manager.get_participants("/", None)):
        try:
            conn = (await sio.get_session(sid)).get("conn")
            transport = sio.eio.transport(eio_sid)
        except KeyError:
            continue  # gone meanwhile
        if conn is not None and transport in counts[conn.role]:
            counts[conn.role][transport] += 1
    return counts


def add_routes(app: web.Application) -> list[web.AbstractRoute]:
    return [
        app.router.add_get(PREFIX + "players/{player_id:[^/]+}/actions", actions),
        app.router.add_get(PREFIX + "players/{player_id:[^/]+}/export", export),
        app.router.add_delete(PREFIX + "players/{player_id:[^/]+}", erase),
        app.router.add_get(PREFIX + "suspects", suspects),
        app.router.add_get(PREFIX + "stats", stats),
        # Tried after the routes above (aiohttp tries the longest static prefix first, then in
        # the order added), so only paths and methods none of them serves get here.
        app.router.add_route("*", PREFIX + "{tail:.*}", fallback),
        app.router.add_route("*", PREFIX.rstrip("/"), fallback),
    ]
