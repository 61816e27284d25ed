"""`python -m app` serves; `python -m app rebuild-leaderboards` rebuilds the read model."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys

from aiohttp import web

from app import logs
from app.config import ConfigError, Settings
from app.server import REBUILD, create_app

HTTP_SHUTDOWN_TIMEOUT_S = 2.0


async def rebuild(settings: Settings) -> int:
    """Open the stores as the server would, rebuild the boards from MongoDB, close."""
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    try:
        count = await runner.app[REBUILD]()
    finally:
        await runner.cleanup()
    print(f"queued {count} players from MongoDB; the flushing instance applies them within LEADERBOARD_FLUSH_MS")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app", description="Live Scoreboard server")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "rebuild-leaderboards"])
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level)
    if args.command == "rebuild-leaderboards":
        if settings.redis_url is None:
            print("REDIS_URL is unset: the in-process stand-in is rebuilt by the server at startup", file=sys.stderr)
            return 2
        return asyncio.run(rebuild(settings))
    app = create_app(settings)
    app.on_startup.append(_tune_gc)
    # SIGTERM and SIGINT: aiohttp stops listening, then the drain runs (app/server.py). By then every
    # socket is closed; shutdown_timeout bounds what is left of plain HTTP requests.
    web.run_app(app, host=settings.host, port=settings.port, print=None, access_log=None,
                shutdown_timeout=HTTP_SHUTDOWN_TIMEOUT_S)
    logging.getLogger("app").info("stopped")
    return 0


async def _tune_gc(app: web.Application) -> None:
    """Every delta sent to thousands of watchers makes thousands of short-lived objects;
    with the default thresholds the collector ran full passes of the whole heap (pauses
    of hundreds of ms at 5,000 connections). Freeze what startup built and collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


if __name__ == "__main__":
    raise SystemExit(main())
