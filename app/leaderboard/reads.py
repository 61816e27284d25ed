"""Leaderboard reads for `leaderboard:get` and the HTTP endpoint: one shape for both.

A read names a period of the table (app/leaderboard/periods.py) and, for an ended one, its
`day` or `week`: that board is final, kept readable for BOARD_HISTORY_DAYS after its end. A
tournament's board (`tournament:<id>`, PROTOCOL.md 10) has period `all` only; it is read like
any other while its tournament exists and ended less than BOARD_HISTORY_DAYS ago.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from app.clock import now_ms
from app.errors import ProtocolError, outage_as_unavailable
from app.leaderboard.boards import BoardStore
from app.leaderboard.periods import ALL
from app.rooms.names import tournament_of


class LeaderboardReads:
    def __init__(self, boards: BoardStore, clock: Callable[[], int] = now_ms,
                 tournament_readable: Callable[[str], Awaitable[object]] | None = None) -> None:
        """`tournament_readable(id)` raises not_found for a tournament whose board is not kept."""
        self._boards = boards
        self._clock = clock
        self._tournament_readable = tournament_readable

    @property
    def periods(self) -> tuple[str, ...]:
        """The names of the periods a read may name."""
        return self._boards.periods.names

    async def get(self, board: str, period: str, limit: int, offset: int, around: str | None,
                  day: str | None = None, week: str | None = None) -> dict:
        now = self._clock()
        table = self._boards.periods
        if period not in table.names:
            raise ProtocolError("invalid_payload", f"period must be one of {', '.join(table.names)}")
        named = {param: value for param, value in (("day", day), ("week", week)) if value is not None}
        if len(named) > 1:
            raise ProtocolError("invalid_payload", "give `day` or `week`, not both")
        tournament = tournament_of(board)
        if tournament is not None:
            if period != ALL or named:
                raise ProtocolError("invalid_payload", "a tournament's board has period `all` only")
            if self._tournament_readable is not None:
                await self._tournament_readable(tournament)
        resets_at: str | None
        if named:
            [(param, value)] = named.items()
            period_key, resets_at = table.ended(period, param, value, now)
        else:
            period_key, resets_at = table.period_key(period, now), table.resets_at(period, now)
        with outage_as_unavailable("the leaderboard store"):
            if around is not None:
                found = await self._boards.around(board, period, around, limit, now, period_key)
                if found is None:
                    raise ProtocolError("not_found", f"{around!r} has no score on {board} ({period})")
                entries, total = found
            else:
                entries, total = await self._boards.page(board, period, offset, limit, now, period_key)
        answer = {"board": board, "period": period, "entries": entries, "total_players": total,
                  "resets_at": resets_at}
        if named:
            answer.update(named)
        return answer

    async def leaders(self, board: str, count: int) -> list[str]:
        """The player ids of the first `count` rows of a board's all-time period, best first."""
        entries, _ = await self._boards.page(board, ALL, 0, count, self._clock())
        return [row["player_id"] for row in entries]
