"""Helpers of the tournament tests: a clock the test turns, a store and a repository on a
database of their own, and PUT bodies."""

from __future__ import annotations

from typing import Any

from pymongo import monitoring

from app.clock import iso
from app.scores.achievements import AchievementBook
from app.scores.repository import ScoreRepository
from app.tournaments.service import TournamentService
from app.tournaments.store import TournamentStore
from tests.support import TEST_ACTIONS

REGIONS = ("na", "eu", "apac", "sa", "oce")
MINUTE = 60_000
HOUR = 60 * MINUTE


class Clock:
    """The server's clock, turned by the test."""

    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


class Commands(monitoring.CommandListener):
    """Every command the client sends MongoDB, by name: what "no store read" is checked on."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.sent.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


class Stack:
    """A tournament store and a score repository on one database of their own."""

    def __init__(self, db: Any, commands: Commands) -> None:
        self.db = db
        self.commands = commands
        self.store = TournamentStore(db)
        self.repo = ScoreRepository(db)
        self.announced: list[tuple[str, dict]] = []

    async def announce(self, player_id: str, payload: dict) -> None:
        self.announced.append((player_id, payload))

    def service(self, clock: Clock, **changes: Any) -> TournamentService:
        options: dict[str, Any] = {
            "store": self.store, "actions": list(TEST_ACTIONS["actions"]), "regions": REGIONS, "history_days": 35,
            "book": AchievementBook.load({}), "unlock": self.repo.unlock, "announce": self.announce,
            "settle_ms": 1000, "award_hold_ms": 10_000, "clock": clock,
        }
        return TournamentService(**{**options, **changes})


def body(start_ms: int, end_ms: int, **extra: Any) -> dict:
    """A PUT body as a client sends it (ISO times)."""
    return {"title": "Weekend cup", "start_at": iso(start_ms), "end_at": iso(end_ms), **extra}


def loaded(start_ms: int, end_ms: int, **extra: Any) -> dict:
    """The same, as TournamentSchema loads it (what the service takes)."""
    return {"title": "Weekend cup", "start_ms": start_ms, "end_ms": end_ms, "actions": None, "regions": None,
            "max_players": None, **extra}
