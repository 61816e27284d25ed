"""Which rooms each connection watches, and the rules for adding one."""

from __future__ import annotations

from app.errors import ProtocolError
from app.rooms.names import parse_room

MAX_WATCHED = 8


class WatchPolicy:
    def __init__(self, regions: tuple[str, ...]) -> None:
        self.regions = regions

    def check_name(self, room: str) -> None:
        parse_room(room, self.regions)

    def check(self, room: str, guild_of_viewer: str | None, watched: set[str], home: set[str]) -> bool:
        """Raises when the room may not be watched; returns whether it counts toward the limit."""
        kind, ident = parse_room(room, self.regions)
        if kind == "guild" and ident != guild_of_viewer:
            raise ProtocolError("forbidden", "only members of a guild may watch its room")
        if room in home or room in watched:
            return False
        if len(watched) >= MAX_WATCHED:
            raise ProtocolError("too_many_rooms", f"a connection may watch at most {MAX_WATCHED} rooms")
        return True
