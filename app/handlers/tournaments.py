"""Tournament routes (PROTOCOL.md 10): operators put them with API_KEY; anyone reads them,
under the public read limit (HTTP_READS_PER_IP_PER_S) as leaderboards are."""

from __future__ import annotations

from aiohttp import web

from app.handlers.admin import require_api_key
from app.handlers.http import SERVICES, _admit_read, _single_query
from app.handlers.replies import json_body
from app.schemas import NoQuerySchema, TournamentSchema

PREFIX = "/api/v1/tournaments"


async def put_tournament(request: web.Request) -> web.Response:
    require_api_key(request)  # before the body: without the key, 401 whatever it holds
    body = TournamentSchema().load(await json_body(request))
    return web.json_response(await request.app[SERVICES].tournaments.put(request.match_info["tournament_id"], body))


async def list_tournaments(request: web.Request) -> web.Response:
    _admit_read(request)
    NoQuerySchema().load(_single_query(request))
    return web.json_response(await request.app[SERVICES].tournaments.listed())


async def get_tournament(request: web.Request) -> web.Response:
    _admit_read(request)
    NoQuerySchema().load(_single_query(request))
    return web.json_response(await request.app[SERVICES].tournaments.get(request.match_info["tournament_id"]))


def add_routes(app: web.Application) -> list[web.AbstractRoute]:
    return [
        app.router.add_get(PREFIX, list_tournaments),
        # [^/]+, not aiohttp's default [^{}/]+: an id with a brace is a bad id, not an unknown path.
        app.router.add_get(PREFIX + "/{tournament_id:[^/]+}", get_tournament),
        app.router.add_put(PREFIX + "/{tournament_id:[^/]+}", put_tournament),
    ]
