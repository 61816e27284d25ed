"""Rebuild the Redis read model from MongoDB, the source of truth.

Every player's standing goes onto the delta queue; the flusher applies it like any
other, with the player's points on the boards of ended periods still readable
(BOARD_HISTORY_DAYS), which go only where Redis lost them (MongoDB keeps points per period,
not when they were reached: a rebuilt entry ranks after equal scores kept, and equal rebuilt
ones by player id). Standings are versioned, so a rebuild racing live credits never moves a
board backwards, and rooms see the result as ordinary deltas. They carry the player's `moves` too,
so a rebuild puts each player where MongoDB says (taking it off boards it has left) whether
Redis was empty or held an older placement.

What keeps players off the boards is marked again first, from MongoDB: suspended and hidden
players (their flags on the documents; a mark Redis holds for a player whose flag is off goes),
and erasures (the `erasures` collection). A player document created at or before its player's
erasure is a restored backup bringing an erased player back: it is erased again here, never queued.

Tournament boards come back from the documents' `tournaments.<id>` for every tournament whose
board is still readable (its tournament exists and ended less than BOARD_HISTORY_DAYS ago),
with the expiry of its keys; an entry kept in Redis is never reordered (the version rule).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Protocol

from app.anticheat.suspensions import Suspensions
from app.clock import now_ms
from app.leaderboard.boards import BoardStore, Standing
from app.leaderboard.periods import readable_ended
from app.leaderboard.queue import DeltaQueue
from app.scores.repository import ScoreRepository

log = logging.getLogger(__name__)

BATCH = 1000


class ErasureBook(Protocol):
    """The erasures a rebuild honours (app/operators/erasure.py)."""

    async def known(self) -> dict[str, int]:
        """player -> erased_ms, every erasure recorded."""
        ...

    async def purge(self, doc: dict) -> None:
        """Erase again the player of a document that came back (a restored backup)."""
        ...


async def rebuild_boards(repo: ScoreRepository, boards: BoardStore, queue: DeltaQueue, suspensions: Suspensions,
                         erasures: ErasureBook | None = None,
                         tournaments: Callable[[], Awaitable[dict[str, int]]] | None = None,
                         expire_at: Callable[[int], int] | None = None) -> int:
    """Queue every player's standing; returns players seen (erased ones not counted).
    `tournaments()`: tournament -> end_ms of those whose boards are kept; `expire_at(end_ms)`:
    when such a board's keys go."""
    now = now_ms()
    kept = await tournaments() if tournaments is not None else {}
    expiry = {tid: expire_at(end) if expire_at else 0 for tid, end in kept.items()}
    count = 0
    batch: list[Standing] = []
    await queue.ensure_group()
    erased = await erasures.known() if erasures is not None else {}
    # Before any standing is queued: a standing of an erased player must meet its mark.
    await boards.mark_erased(erased)
    # Marks Redis holds now; those MongoDB no longer backs are taken off as the players are seen.
    was_hidden, was_suspended = await boards.hidden(), await suspensions.members()
    restored: list[dict] = []
    async for doc in repo.iter_players():
        pid = doc["_id"]
        if pid in erased and int(doc.get("created_ms") or 0) <= erased[pid]:
            restored.append(doc)  # erased after the loop, not under the open cursor
            continue
        count += 1
        await boards.set_name(pid, doc["name"])
        if doc.get("suspended") or pid in was_suspended:
            await suspensions.mark(pid, bool(doc.get("suspended")))
        if doc.get("hidden") or pid in was_hidden:
            await boards.set_hidden(pid, bool(doc.get("hidden")))
        scored = doc.get("tournaments") or {}
        standing = replace(Standing.from_player(doc, now, boards.periods,
                                                {tid: at for tid, at in expiry.items() if tid in scored}),
                           history=readable_ended(doc, boards.periods, now))
        if standing.version > 0:
            batch.append(standing)
        if len(batch) >= BATCH:
            await queue.push_many(batch)
            batch = []
    if batch:
        await queue.push_many(batch)
    for doc in restored:
        assert erasures is not None  # only erasures' players are restored
        log.warning("a player erased earlier came back (a restored backup?): erased again",
                    extra={"player_id": doc["_id"]})
        await erasures.purge(doc)
    if count >= queue.max_len // 2:
        # The queue's cap would trim this rebuild's own standings (then rebuild again, forever).
        log.error("%d players against a delta queue capped at %d entries: raise STREAM_MAX_LEN", count, queue.max_len)
    log.info("leaderboards rebuild queued from MongoDB: %d players", count)
    return count
