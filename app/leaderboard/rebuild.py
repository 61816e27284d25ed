"""Rebuild the Redis read model from MongoDB, the source of truth.

Entries carry versions, so a rebuild racing live credits never moves a board backwards.
"""

from __future__ import annotations

import logging

from app.clock import now_ms
from app.anticheat.suspensions import Suspensions
from app.leaderboard.boards import BoardStore, Standing
from app.scores.repository import ScoreRepository

log = logging.getLogger(__name__)


async def rebuild_boards(repo: ScoreRepository, boards: BoardStore, suspensions: Suspensions) -> int:
    """Put every player with a credited action back on its boards; returns players seen."""
    now = now_ms()
    count = 0
    async for doc in repo.iter_players():
        count += 1
        await boards.set_name(doc["_id"], doc["name"])
        if doc.get("suspended"):
            await suspensions.mark(doc["_id"], True)
        await boards.apply(Standing.from_player(doc, now))
    log.info("leaderboards rebuilt from MongoDB: %d players", count)
    return count
