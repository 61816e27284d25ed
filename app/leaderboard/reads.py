"""Leaderboard reads for `leaderboard:get` and the HTTP endpoint: one shape for both."""

from __future__ import annotations

from app.clock import now_ms
from app.errors import ProtocolError, outage_as_unavailable
from app.leaderboard.boards import BoardStore


class LeaderboardReads:
    def __init__(self, boards: BoardStore) -> None:
        self._boards = boards

    async def get(self, board: str, period: str, limit: int, offset: int, around: str | None) -> dict:
        now = now_ms()
        with outage_as_unavailable("the leaderboard store"):
            if around is not None:
                found = await self._boards.around(board, period, around, limit, now)
                if found is None:
                    raise ProtocolError("not_found", f"{around!r} has no score on {board} ({period})")
                entries, total = found
            else:
                entries, total = await self._boards.page(board, period, offset, limit, now)
        return {"board": board, "period": period, "entries": entries, "total_players": total}
