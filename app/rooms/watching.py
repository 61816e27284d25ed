"""Which rooms each connection watches, and the rules for adding one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from app.errors import ProtocolError
from app.rooms.names import TOURNAMENT, parse_room

MAX_WATCHED = 8


class WatchPolicy:
    def __init__(self, regions: tuple[str, ...],
                 tournament_readable: Callable[[str], Awaitable[object]] | None = None) -> None:
        """`tournament_readable(id)`: raises not_found for a tournament that does not exist (or
        whose board is no longer kept); a room named after one is not watched."""
        self.regions = regions
        self._tournament_readable = tournament_readable

    def check_name(self, room: str) -> None:
        parse_room(room, self.regions)

    def check(self, room: str, guild_of_viewer: str | None, watched: set[str], home: set[str]) -> bool:
        """Raises when the room may not be watched; returns whether it counts toward the limit.
        Anyone may watch a region's or a tournament's room; only members a guild's."""
        kind, ident = parse_room(room, self.regions)
        if kind == "guild" and ident != guild_of_viewer:
            raise ProtocolError("forbidden", "only members of a guild may watch its room")
        if room in home or room in watched:
            return False
        if len(watched) >= MAX_WATCHED:
            raise ProtocolError("too_many_rooms", f"a connection may watch at most {MAX_WATCHED} rooms")
        return True

    async def check_exists(self, room: str) -> None:
        """not_found for the room of a tournament that does not exist; the name is checked already."""
        kind, ident = parse_room(room, self.regions)
        if kind == TOURNAMENT and self._tournament_readable is not None:
            await self._tournament_readable(ident)
