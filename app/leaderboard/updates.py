"""Carries a credited standing toward the read model, and achievements to the player.

The read model may lag or be down; MongoDB already holds the credit, so nothing here
ever refuses a completion.
"""

from __future__ import annotations

import logging

from app.breaker import Breaker
from app.leaderboard.boards import BoardStore, Standing
from app.leaderboard.periods import ALL
from app.leaderboard.queue import DeltaQueue
from app.notify import Notifier
from app.rooms.names import player_room

log = logging.getLogger(__name__)


class BoardUpdates:
    def __init__(self, boards: BoardStore, queue: DeltaQueue, notifier: Notifier,
                 breaker: Breaker | None = None) -> None:
        self._boards = boards
        self._queue = queue
        self._notifier = notifier
        self._breaker = breaker or Breaker()

    async def publish(self, standing: Standing) -> int | None:
        """Queue the standing for the next flush; the global all-time rank it reaches, if known
        (one round trip for both: app/leaderboard/append.lua)."""
        return await self._queue.push_and_rank(standing, self._boards.key("global", ALL, standing.at_ms))

    async def announce_achievement(self, player_id: str, payload: dict) -> None:
        """Pushed through Redis; skipped while Redis fails (the ack and the profile list it)."""
        if self._breaker.ready():
            await self._notifier.to_room(player_room(player_id), "achievement:unlocked", payload)
