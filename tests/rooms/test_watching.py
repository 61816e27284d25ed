"""Who may watch which room, and the 8-room limit (PROTOCOL.md section 4)."""

from __future__ import annotations

import pytest

from app.errors import ProtocolError
from app.rooms.names import home_rooms
from app.rooms.watching import MAX_WATCHED, WatchPolicy

REGIONS = ("na", "eu", "apac", "sa", "oce")


@pytest.fixture
def policy() -> WatchPolicy:
    return WatchPolicy(REGIONS)


def code(fn, *args) -> str:
    with pytest.raises(ProtocolError) as info:
        fn(*args)
    return info.value.code


def test_limit_is_eight() -> None:
    assert MAX_WATCHED == 8


@pytest.mark.parametrize("room", [f"region:{r}" for r in REGIONS])
def test_anyone_may_watch_any_region(policy: WatchPolicy, room: str) -> None:
    assert policy.check(room, None, set(), set()) is True
    assert policy.check(room, "g1", set(), set()) is True


def test_only_members_may_watch_a_guild(policy: WatchPolicy) -> None:
    assert policy.check("guild:g1", "g1", set(), set()) is True
    assert code(policy.check, "guild:g1", "g2", set(), set()) == "forbidden"
    assert code(policy.check, "guild:g1", None, set(), set()) == "forbidden"
    assert code(policy.check, "guild:G1", "g1", set(), set()) == "forbidden"


@pytest.mark.parametrize("room", ["", "region:mars", "guild:", "player:p1", "global", "guild:a b", "region"])
def test_malformed_names(policy: WatchPolicy, room: str) -> None:
    assert code(policy.check, room, "g1", set(), set()) == "invalid_payload"
    assert code(policy.check_name, room) == "invalid_payload"


def test_check_name_accepts_valid_names(policy: WatchPolicy) -> None:
    policy.check_name("region:eu")
    policy.check_name("guild:anyone")  # membership is not a naming question


def test_own_rooms_do_not_count(policy: WatchPolicy) -> None:
    home = set(home_rooms("p1", "eu", "g1"))
    assert policy.check("region:eu", "g1", set(), home) is False
    assert policy.check("guild:g1", "g1", set(), home) is False


def test_watching_again_does_not_count_twice(policy: WatchPolicy) -> None:
    assert policy.check("region:na", None, {"region:na"}, set()) is False


def test_at_most_eight_rooms() -> None:
    regions = tuple(f"r{i}" for i in range(12))
    policy = WatchPolicy(regions)
    watched: set[str] = set()
    for region in regions[:MAX_WATCHED]:
        room = f"region:{region}"
        assert policy.check(room, None, watched, set()) is True
        watched.add(room)
    assert code(policy.check, f"region:{regions[MAX_WATCHED]}", None, watched, set()) == "too_many_rooms"
    # Full up, a room already watched still answers (a fresh snapshot) without counting...
    assert policy.check("region:r0", None, watched, set()) is False
    # ...and so do the player's own rooms.
    home = {"region:r11", "player:p1", "guild:g1"}
    assert policy.check("region:r11", "g1", watched, home) is False
    assert policy.check("guild:g1", "g1", watched, home) is False
    # After one unwatch there is room for one more.
    watched.discard("region:r3")
    assert policy.check("region:r9", None, watched, set()) is True


def test_forbidden_comes_before_the_limit(policy: WatchPolicy) -> None:
    watched = {f"guild:w{i}" for i in range(MAX_WATCHED)}
    assert code(policy.check, "guild:other", "mine", watched, set()) == "forbidden"
