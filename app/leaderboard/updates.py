"""Carries a credited standing into the read model and out to watchers.

The read model may lag or be down; MongoDB already holds the credit, so a failure here
is logged and never refuses the completion.
"""

from __future__ import annotations

import logging

from redis.exceptions import RedisError

from app.leaderboard.boards import BoardStore, Standing
from app.leaderboard.feed import RoomFeed
from app.notify import Notifier
from app.rooms.names import player_room

log = logging.getLogger(__name__)


class BoardUpdates:
    def __init__(self, boards: BoardStore, feed: RoomFeed, notifier: Notifier) -> None:
        self._boards = boards
        self._feed = feed
        self._notifier = notifier

    async def publish(self, standing: Standing) -> int | None:
        """Apply to the boards and tell watchers; the player's global all-time rank, if known."""
        try:
            await self._boards.apply(standing)
            rank = await self._boards.rank("global", "all", standing.player_id, standing.at_ms)
            for room in standing.boards()[1:]:
                await self._feed.push(room, standing.at_ms)
            return rank
        except (RedisError, OSError):
            log.warning("read model update failed", exc_info=True, extra={"player_id": standing.player_id})
            return None

    async def announce_achievement(self, player_id: str, payload: dict) -> None:
        await self._notifier.to_room(player_room(player_id), "achievement:unlocked", payload)
