"""Achievement rules: thresholds crossed by one credit, streaks, ranks, extra achievements (PROTOCOL.md 7)."""

from __future__ import annotations

from typing import Any

import pytest

from app.config import ConfigError
from app.scores.achievements import BUILTIN, Achievement, AchievementBook, streak_days

TODAY = "2026-11-23"


def ids(achievements: list[Achievement]) -> list[str]:
    return sorted(a.id for a in achievements)


def doc(actions: int = 0, total: int = 0, days: list[str] | None = None) -> dict:
    return {"actions": actions, "total": total, "active_days": days or []}


def known(book: AchievementBook, ach_id: str) -> Achievement:
    ach = book.get(ach_id)
    assert ach is not None, ach_id
    return ach


@pytest.fixture
def book() -> AchievementBook:
    return AchievementBook.load({})


def test_builtin_catalogue_has_the_protocol_achievements(book: AchievementBook) -> None:
    for ach_id in ("first_action", "score_100", "score_1000", "score_10000"):
        assert book.get(ach_id) is not None
    assert known(book, "score_100").threshold == 100 and known(book, "score_100").kind == "score"
    assert any(a.kind == "streak_days" for a in BUILTIN)
    assert any(a.kind == "global_rank" for a in BUILTIN)
    assert book.get("nope") is None
    assert known(book, "first_action").public() == {
        "id": "first_action", "name": "First steps", "description": "Complete your first action.",
    }


def test_first_credit_unlocks_first_action(book: AchievementBook) -> None:
    assert ids(book.crossed(None, doc(1, 10, [TODAY]), TODAY)) == ["first_action"]
    assert ids(book.crossed({}, doc(1, 10, [TODAY]), TODAY)) == ["first_action"]


def test_nothing_crossed_twice(book: AchievementBook) -> None:
    assert book.crossed(doc(1, 10, [TODAY]), doc(2, 20, [TODAY]), TODAY) == []
    assert book.crossed(doc(5, 100, [TODAY]), doc(6, 150, [TODAY]), TODAY) == []


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (90, 99, []),
        (90, 100, ["score_100"]),
        (99, 100, ["score_100"]),
        (100, 101, []),
        (999, 1000, ["score_1000"]),
        (50, 1000, ["score_100", "score_1000"]),
        (50, 20_000, ["score_100", "score_1000", "score_10000"]),
        (9_999, 10_000, ["score_10000"]),
        (10_000, 99_999, []),
    ],
)
def test_score_thresholds(book: AchievementBook, before: int, after: int, expected: list[str]) -> None:
    assert ids(book.crossed(doc(3, before, [TODAY]), doc(4, after, [TODAY]), TODAY)) == expected


def test_first_credit_that_reaches_a_score_unlocks_both(book: AchievementBook) -> None:
    assert ids(book.crossed(None, doc(1, 600, [TODAY]), TODAY)) == ["first_action", "score_100"]


def test_global_rank_achievements_never_come_from_documents(book: AchievementBook) -> None:
    crossed = book.crossed(None, doc(1, 10**9, [TODAY]), TODAY)
    assert not [a for a in crossed if a.kind == "global_rank"]


@pytest.mark.parametrize(
    ("days", "today", "expected"),
    [
        ([], TODAY, 0),
        ([TODAY], TODAY, 1),
        (["2026-11-22"], TODAY, 0),
        (["2026-11-21", "2026-11-22", TODAY], TODAY, 3),
        (["2026-11-20", "2026-11-22", TODAY], TODAY, 2),
        ([TODAY, "2026-11-22", "2026-11-21", "2026-11-21"], TODAY, 3),
        (["2026-12-30", "2026-12-31", "2027-01-01"], "2027-01-01", 3),
        (["2028-02-28", "2028-02-29", "2028-03-01"], "2028-03-01", 3),
        (["2026-11-24", TODAY], TODAY, 1),
    ],
)
def test_streak_days(days: list[str], today: str, expected: int) -> None:
    assert streak_days(days, today) == expected


def test_streak_achievements(book: AchievementBook) -> None:
    two = ["2026-11-21", "2026-11-22"]
    # Scoring today after two days in a row makes three.
    assert ids(book.crossed(doc(5, 50, two), doc(6, 60, [*two, TODAY]), TODAY)) == ["streak_3"]
    # A second credit on the same day crosses nothing more.
    three = [*two, TODAY]
    assert book.crossed(doc(6, 60, three), doc(7, 70, three), TODAY) == []
    # With a gap the streak starts over.
    gap = ["2026-11-19", "2026-11-20", "2026-11-22"]
    assert book.crossed(doc(3, 30, gap), doc(4, 40, [*gap, TODAY]), TODAY) == []


def test_streak_3_is_crossed_on_the_third_day_only(book: AchievementBook) -> None:
    """Day 4 of a streak goes from 3 days to 4: it crosses no threshold, so reports no achievement."""
    three = ["2026-11-20", "2026-11-21", "2026-11-22"]
    assert book.crossed(doc(3, 30, three), doc(4, 40, [*three, TODAY]), TODAY) == []


def test_streak_7_on_the_seventh_day_crosses_only_streak_7(book: AchievementBook) -> None:
    week = ["2026-11-17", "2026-11-18", "2026-11-19", "2026-11-20", "2026-11-21", "2026-11-22"]
    assert ids(book.crossed(doc(9, 90, week), doc(10, 99, [*week, TODAY]), TODAY)) == ["streak_7"]


@pytest.mark.parametrize(
    ("rank", "expected"),
    [(1, ["top_1", "top_10"]), (2, ["top_10"]), (10, ["top_10"]), (11, []), (500, [])],
)
def test_by_rank(book: AchievementBook, rank: int, expected: list[str]) -> None:
    assert ids(book.by_rank(rank)) == expected


def test_load_extra_achievements() -> None:
    book = AchievementBook.load({
        "score_50": {"name": "Fifty", "description": "Reach 50.", "kind": "score", "threshold": 50},
        "ten_actions": {"name": "Ten", "kind": "actions", "threshold": 10},
        "top_3": {"name": "Podium", "kind": "global_rank", "threshold": 3},
        "streak_2": {"name": "Twice", "kind": "streak_days", "threshold": 2},
    })
    assert book.get("score_50") == Achievement("score_50", "Fifty", "Reach 50.", "score", 50)
    assert known(book, "ten_actions").description == ""
    assert book.get("first_action") is not None  # the built-ins stay
    assert ids(book.crossed(doc(4, 40, [TODAY]), doc(5, 55, [TODAY]), TODAY)) == ["score_50"]
    assert ids(book.crossed(doc(9, 40, [TODAY]), doc(10, 45, [TODAY]), TODAY)) == ["ten_actions"]
    assert ids(book.crossed(doc(1, 10, ["2026-11-22"]), doc(2, 20, ["2026-11-22", TODAY]), TODAY)) == ["streak_2"]
    assert ids(book.by_rank(3)) == ["top_10", "top_3"]
    assert ids(book.by_rank(1)) == ["top_1", "top_10", "top_3"]


def test_extra_achievement_replaces_a_builtin_of_the_same_id() -> None:
    book = AchievementBook.load({"score_100": {"name": "Ton", "kind": "score", "threshold": 120}})
    assert book.get("score_100") == Achievement("score_100", "Ton", "", "score", 120)
    assert ids(book.crossed(doc(1, 90, [TODAY]), doc(2, 110, [TODAY]), TODAY)) == []
    assert ids(book.crossed(doc(1, 110, [TODAY]), doc(2, 130, [TODAY]), TODAY)) == ["score_100"]


@pytest.mark.parametrize(
    "raw",
    [
        {},
        {"kind": "score", "threshold": 5},
        {"name": "X", "threshold": 5},
        {"name": "X", "kind": "score"},
        {"name": "X", "kind": "weekly_rank", "threshold": 5},
        {"name": "X", "kind": "score", "threshold": 0},
        {"name": "X", "kind": "score", "threshold": -1},
        {"name": "X", "kind": "score", "threshold": 10**12 + 1},
        {"name": "X", "kind": "score", "threshold": "5"},
        {"name": "X", "kind": "score", "threshold": 5.5},
        {"name": "X", "kind": "score", "threshold": True},
        {"name": "X", "kind": "score", "threshold": None},
        {"name": "", "kind": "score", "threshold": 5},
        {"name": "n" * 65, "kind": "score", "threshold": 5},
        {"name": "X", "description": "d" * 257, "kind": "score", "threshold": 5},
        {"name": "X", "kind": "score", "threshold": 5, "points": 10},
        {"name": 5, "kind": "score", "threshold": 5},
        "not an object",
        None,
        [],
    ],
)
def test_load_bad_achievement_is_a_config_error(raw: Any) -> None:
    with pytest.raises(ConfigError, match="bad_one"):
        AchievementBook.load({"fine": {"name": "Fine", "kind": "score", "threshold": 5}, "bad_one": raw})
