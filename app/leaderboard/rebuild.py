"""Rebuild the Redis read model from MongoDB, the source of truth.

Every player's standing goes onto the delta queue; the flusher applies it like any
other. Standings are versioned, so a rebuild racing live credits never moves a board
backwards, and rooms see the result as ordinary deltas. They carry the player's `moves` too,
so a rebuild puts each player where MongoDB says (taking it off boards it has left) whether
Redis was empty or held an older placement.
"""

from __future__ import annotations

import logging

from app.anticheat.suspensions import Suspensions
from app.clock import now_ms
from app.leaderboard.boards import BoardStore, Standing
from app.leaderboard.queue import DeltaQueue
from app.scores.repository import ScoreRepository

log = logging.getLogger(__name__)

BATCH = 1000


async def rebuild_boards(repo: ScoreRepository, boards: BoardStore, queue: DeltaQueue, suspensions: Suspensions) -> int:
    """Queue every player's standing; returns players seen."""
    now = now_ms()
    count = 0
    batch: list[Standing] = []
    await queue.ensure_group()
    async for doc in repo.iter_players():
        count += 1
        await boards.set_name(doc["_id"], doc["name"])
        if doc.get("suspended"):
            await suspensions.mark(doc["_id"], True)
        standing = Standing.from_player(doc, now)
        if standing.version > 0:
            batch.append(standing)
        if len(batch) >= BATCH:
            await queue.push_many(batch)
            batch = []
    if batch:
        await queue.push_many(batch)
    if count >= queue.max_len // 2:
        # The queue's cap would trim this rebuild's own standings (then rebuild again, forever).
        log.error("%d players against a delta queue capped at %d entries: raise STREAM_MAX_LEN", count, queue.max_len)
    log.info("leaderboards rebuild queued from MongoDB: %d players", count)
    return count
