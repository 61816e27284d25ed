"""Liveness, readiness and metrics (PROTOCOL.md 8)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from app.metrics import Metrics

METRICS = web.AppKey("metrics", Metrics)
PROBES = web.AppKey("probes", dict)

PROBE_TIMEOUT_S = 2.0


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _probe(check: Callable[[], Awaitable[object]]) -> bool:
    try:
        await asyncio.wait_for(check(), PROBE_TIMEOUT_S)
        return True
    except Exception:  # noqa: BLE001 - any failure means "not ready"
        return False


async def readyz(request: web.Request) -> web.Response:
    """503 naming each store that does not answer."""
    probes: dict[str, Callable[[], Awaitable[object]]] = request.app[PROBES]
    results = await asyncio.gather(*(_probe(check) for check in probes.values()))
    checks = {name: ("ok" if ok else "down") for name, ok in zip(probes, results, strict=True)}
    down = [name for name, ok in zip(probes, results, strict=True) if not ok]
    if down:
        body = {"status": "unavailable", "checks": checks,
                "error": {"code": "unavailable", "message": f"down: {', '.join(down)}"}}
        return web.json_response(body, status=503)
    return web.json_response({"status": "ok", "checks": checks})


async def metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].render()
    return web.Response(body=body, content_type="text/plain", charset="utf-8",
                        headers={"X-Prometheus-Format": "0.0.4"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
