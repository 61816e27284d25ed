"""Room and board names (PROTOCOL.md sections 4 and 6)."""

from __future__ import annotations

import pytest

from app.errors import ProtocolError
from app.rooms.names import home_rooms, parse_board, parse_room, player_room

REGIONS = ("na", "eu", "apac", "sa", "oce")


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        ("region:eu", ("region", "eu")),
        ("region:oce", ("region", "oce")),
        ("guild:g1", ("guild", "g1")),
        ("guild:Guild_of-Heroes", ("guild", "Guild_of-Heroes")),
        ("guild:" + "g" * 64, ("guild", "g" * 64)),
    ],
)
def test_parse_room_valid(name: str, parsed: tuple[str, str]) -> None:
    assert parse_room(name, REGIONS) == parsed


@pytest.mark.parametrize(
    "name",
    [
        "",
        "eu",
        "region",
        "region:",
        "region:mars",
        "region:EU",
        "region:eu:x",
        "region: eu",
        "region:eu ",
        "Region:eu",
        "guild:",
        "guild:" + "g" * 65,
        "guild:a b",
        "guild:a:b",
        "guild:ü",
        "guild:g\n",
        "player:p1",
        "global",
        ":eu",
        "region;eu",
    ],
)
def test_parse_room_invalid(name: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_room(name, REGIONS)
    assert info.value.code == "invalid_payload"


def test_parse_room_uses_the_configured_regions() -> None:
    assert parse_room("region:mars", ("mars",)) == ("region", "mars")
    with pytest.raises(ProtocolError):
        parse_room("region:eu", ("mars",))


@pytest.mark.parametrize("name", ["global", "region:na", "guild:g-1"])
def test_parse_board_valid(name: str) -> None:
    assert parse_board(name, REGIONS) == name


@pytest.mark.parametrize("name", ["", "Global", "global:all", "region:mars", "guild:", "player:p1", "guild:x\n"])
def test_parse_board_invalid(name: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_board(name, REGIONS)
    assert info.value.code == "invalid_payload"
    assert "board" in info.value.message


def test_player_room() -> None:
    assert player_room("p_1") == "player:p_1"


def test_home_rooms() -> None:
    assert home_rooms("p1", "eu", None) == ["region:eu", "player:p1"]
    assert home_rooms("p1", "eu", "g1") == ["region:eu", "player:p1", "guild:g1"]
    assert sorted(home_rooms("p1", "apac", "g1")) == ["guild:g1", "player:p1", "region:apac"]
