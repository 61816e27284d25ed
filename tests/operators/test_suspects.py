"""GET /api/v1/admin/suspects: players whose suspicion reached the threshold, most suspicious
first, paged by cursor without overlap or gap, ties included."""

from __future__ import annotations

from app.anticheat.scoring import THRESHOLD
from app.clock import iso, now_ms
from tests.support import Operator


def suspicion(score: float, since: int | None, bonus: int = 0) -> dict:
    return {"score": score, "signals": {"at_min": {"figure": score, "share": 0.9}}, "difficulty_bonus": bonus,
            "since": since, "updated_ms": now_ms()}


async def test_suspects_are_listed_most_suspicious_first_and_paged_without_overlap(operator: Operator, player,
                                                                                  mongo):
    at = now_ms() - 60_000
    scores = {"s-a": 0.91, "s-b": 0.7, "s-c": 0.7, "s-d": 0.7, "s-e": THRESHOLD, "s-f": 1.0, "s-g": 0.55,
              "s-low": THRESHOLD - 0.01, "s-zero": 0.0}
    for pid, score in scores.items():
        mongo.players.insert_one({"_id": pid, "name": f"Name {pid}", "region": "eu", "guild": None, "total": 0,
                                  "actions": 0, "created_ms": at,
                                  "suspicion": suspicion(score, at if score >= THRESHOLD else None, 3)})
    # A player without any suspicion document is no suspect either.
    session, _ = await player()
    expected = ["s-f", "s-a", "s-b", "s-c", "s-d", "s-g", "s-e"]

    first = await operator.ok("GET", "/api/v1/admin/suspects")
    assert [e["player_id"] for e in first["entries"]] == expected and first["next_cursor"] is None
    top = first["entries"][0]
    assert top == {"player_id": "s-f", "name": "Name s-f", "suspicion": 1.0,
                   "signals": {"at_min": {"figure": 1.0, "share": 0.9}}, "difficulty_bonus": 3, "since": iso(at),
                   "suspended": False, "hidden": False}
    for limit in (1, 2, 3, 7):
        seen, cursor = [], None
        while True:
            query = f"?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
            page = await operator.ok("GET", f"/api/v1/admin/suspects{query}")
            assert len(page["entries"]) <= limit
            seen += [e["player_id"] for e in page["entries"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == expected, limit

    # Suspended and hidden by an operator: still listed, and it says so.
    await operator.ok("PUT", "/api/v1/players/s-b/suspension", json={"suspended": True, "hidden": True})
    entries = (await operator.ok("GET", "/api/v1/admin/suspects"))["entries"]
    [b] = [e for e in entries if e["player_id"] == "s-b"]
    assert b["suspended"] is True and b["hidden"] is True


async def test_no_suspects_is_an_empty_list(operator: Operator):
    assert await operator.ok("GET", "/api/v1/admin/suspects") == {"entries": [], "next_cursor": None}
