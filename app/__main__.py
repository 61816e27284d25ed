"""`python -m app` serves; `python -m app rebuild-leaderboards` rebuilds the read model."""

from __future__ import annotations

import argparse
import sys

from aiohttp import web

from app import logs
from app.config import ConfigError, Settings
from app.server import create_app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app", description="Live Scoreboard server")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve"])
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level)
    if args.command == "serve":
        web.run_app(create_app(settings), host=settings.host, port=settings.port, print=None,
                    access_log=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
