"""Room and board names. A room `region:eu` shows board `region:eu`; `guild:x` shows `guild:x`."""

from __future__ import annotations

import re

from app.errors import ProtocolError

ID_PATTERN = r"[A-Za-z0-9_-]{1,64}"
_ID = re.compile(rf"^{ID_PATTERN}\Z")


def parse_room(name: str, regions: tuple[str, ...]) -> tuple[str, str]:
    """('region', code) or ('guild', id); anything else is invalid_payload."""
    kind, sep, rest = name.partition(":")
    if sep and kind == "region" and rest in regions:
        return kind, rest
    if sep and kind == "guild" and _ID.match(rest):
        return kind, rest
    raise ProtocolError("invalid_payload", f"room must be region:<{'|'.join(regions)}> or guild:<id>")


def parse_board(name: str, regions: tuple[str, ...]) -> str:
    if name == "global":
        return name
    try:
        parse_room(name, regions)
    except ProtocolError:
        raise ProtocolError("invalid_payload", "board must be global, region:<code> or guild:<id>") from None
    return name


def player_room(player_id: str) -> str:
    return f"player:{player_id}"


def home_rooms(player_id: str, region: str, guild: str | None) -> list[str]:
    rooms = [f"region:{region}", player_room(player_id)]
    if guild:
        rooms.append(f"guild:{guild}")
    return rooms
