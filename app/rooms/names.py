"""Room and board names. A room `region:eu` shows board `region:eu`; `guild:x` shows `guild:x`;
(v1.1) `tournament:<id>` shows the tournament's board (all-time only, PROTOCOL.md 10)."""

from __future__ import annotations

import re

from app.errors import ProtocolError

ID_PATTERN = r"[A-Za-z0-9_-]{1,64}"
_ID = re.compile(rf"^{ID_PATTERN}\Z")
TOURNAMENT = "tournament"


def parse_room(name: str, regions: tuple[str, ...]) -> tuple[str, str]:
    """('region', code), ('guild', id) or ('tournament', id); anything else is invalid_payload.
    Whether a tournament of that id exists is the tournament service's to say."""
    kind, sep, rest = name.partition(":")
    if sep and kind == "region" and rest in regions:
        return kind, rest
    if sep and kind in ("guild", TOURNAMENT) and _ID.match(rest):
        return kind, rest
    raise ProtocolError("invalid_payload",
                        f"room must be region:<{'|'.join(regions)}>, guild:<id> or tournament:<id>")


def parse_board(name: str, regions: tuple[str, ...]) -> str:
    if name == "global":
        return name
    try:
        parse_room(name, regions)
    except ProtocolError:
        raise ProtocolError("invalid_payload",
                            "board must be global, region:<code>, guild:<id> or tournament:<id>") from None
    return name


def tournament_board(tournament_id: str) -> str:
    """The board (and room) of a tournament."""
    return f"{TOURNAMENT}:{tournament_id}"


def tournament_of(name: str) -> str | None:
    """The tournament id a board or room name is of, or None."""
    kind, sep, rest = name.partition(":")
    return rest if sep and kind == TOURNAMENT else None


def player_room(player_id: str) -> str:
    return f"player:{player_id}"


def home_rooms(player_id: str, region: str, guild: str | None) -> list[str]:
    rooms = [f"region:{region}", player_room(player_id)]
    if guild:
        rooms.append(f"guild:{guild}")
    return rooms
