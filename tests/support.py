"""Helpers shared by test modules (fixtures stay in conftest.py; helpers are imported from here)."""

from __future__ import annotations

import pytest
import socketio

from app.anticheat.proof import proof_ok
from app.leaderboard.boards import Standing
from app.leaderboard.periods import DAILY, WEEKLY, PeriodPoints, Totals


def bad_proof(token: str, difficulty: int) -> str:
    """A proof that does not do the work (a fixed junk string passes 1 time in 2**difficulty)."""
    n = 0
    while proof_ok(token, f"x{n}", difficulty):
        n += 1
    return f"x{n}"


async def connect_refusal(url: str, auth: object) -> object:
    """Connect with `auth`, expect a refusal, return what the client's connect_error carried."""
    client = socketio.AsyncClient(reconnection=False)
    seen: list = []
    client.on("connect_error", lambda data: seen.append(data))
    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect(url, auth=auth, transports=["websocket"], wait_timeout=5)
    finally:
        await client.eio.disconnect()  # the refused client closes its engine.io connection
    return seen[0]


def make_standing(player_id: str, name: str, region: str, guild: str | None, version: int, total: int, daily: int,
                  weekly: int, at_ms: int, moves: int = 0, created_ms: int = 0) -> Standing:
    """A standing on the standard period table: all-time, today's and this week's points."""
    totals = Totals(total, (PeriodPoints(DAILY.name, DAILY.period_key(at_ms), daily),
                            PeriodPoints(WEEKLY.name, WEEKLY.period_key(at_ms), weekly)))
    return Standing(player_id, name, region, guild, version, totals, at_ms, moves, created_ms)
