"""`python -m app` serves; `python -m app rebuild-leaderboards` rebuilds the read model."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys

from aiohttp import web

from app import logs
from app.config import ConfigError, Settings
from app.server import REBUILD, create_app, drain_then_close

HTTP_SHUTDOWN_TIMEOUT_S = 2.0  # by then every socket is closed: what is left are plain HTTP requests


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
    if settings.event_loop == "uvloop":
        # libuv's loop: transport writes and callbacks in C (see the README's benchmarks for what it saves).
        import uvloop

        uvloop.run(serve(settings))
    else:
        asyncio.run(serve(settings))
    logging.getLogger("app").info("stopped")
    return 0


async def serve(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT; then stop listening and drain before aiohttp's own shutdown.

    aiohttp's shutdown stops reading open connections as well, so an event sent during the
    drain would get no answer; draining first, it is answered `unavailable` and the client
    retries elsewhere. The cleanup contexts then flush, give up the lease and close the stores.
    """
    app = create_app(settings)
    app.on_startup.append(_tune_gc)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=HTTP_SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        await stopping.wait()
        await site.stop()
        await drain_then_close(app)
    finally:
        await runner.cleanup()


async def _tune_gc(app: web.Application) -> None:
    """Every delta sent to thousands of watchers makes thousands of short-lived objects;
    with the default thresholds the collector ran full passes of the whole heap (pauses
    of hundreds of ms at 5,000 connections). Freeze what startup built and collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


if __name__ == "__main__":
    raise SystemExit(main())
