"""A tournament's window and filters, and the achievements of its first three."""

from __future__ import annotations

from app.scores.achievements import AchievementBook
from app.tournaments.model import Tournament


def test_the_window_is_start_inclusive_end_exclusive() -> None:
    t = Tournament("cup", "Cup", start_ms=1000, end_ms=2000, actions=("quick",), regions=("eu",))
    assert [t.state(ms) for ms in (999, 1000, 1999, 2000)] == ["upcoming", "running", "running", "ended"]
    assert t.counts("quick", "eu", 1000) and t.counts("quick", "eu", 1999)
    assert not t.counts("quick", "eu", 999) and not t.counts("quick", "eu", 2000)
    assert not t.counts("big", "eu", 1500) and not t.counts("quick", "na", 1500)
    every = Tournament("open", "Open", start_ms=1000, end_ms=2000)
    assert every.counts("anything", "anywhere", 1500)
    assert every.public(1500)["actions"] is None and every.public(1500)["regions"] is None


def test_tournament_places_unlock_their_own_achievement_only() -> None:
    book = AchievementBook.load({})
    assert [[a.id for a in book.by_tournament_place(p)] for p in (1, 2, 3, 4)] == [
        ["tournament_1"], ["tournament_2"], ["tournament_3"], []]
    # Never from a player's totals, however high.
    crossed = book.crossed(None, {"actions": 10**6, "total": 10**9, "active_days": []}, "2026-11-23")
    assert not [a for a in crossed if a.id.startswith("tournament_")]
