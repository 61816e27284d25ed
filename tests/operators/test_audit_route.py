"""GET /api/v1/admin/players/<id>/actions: the player's completion attempts, credited and
refused, with every field, newest first, paged by cursor without overlap; and every operator
call about a player lands in the operator log."""

from __future__ import annotations

from datetime import datetime

from app.anticheat.proof import proof_ok
from tests.support import Operator, eventually

FIELDS = {"action_id", "action", "outcome", "duplicate", "points", "started_at", "completed_at", "play_ms",
          "difficulty", "instance", "client"}


def bad_proof(token: str, difficulty: int) -> str:
    return next(p for p in (f"x{n}" for n in range(1000)) if not proof_ok(token, p, difficulty))


async def refused_attempt(client) -> dict:
    started = await client.call("action:start", {"action": "quick"})
    challenge = started["challenge"]
    ack = await client.call("action:complete", {"token": challenge["token"],
                                                "proof": bad_proof(challenge["token"], challenge["difficulty"])})
    assert ack["ok"] is False and ack["error"]["code"] == "proof_invalid", ack
    return challenge


async def all_pages(operator: Operator, pid: str, limit: int) -> list[dict]:
    seen, cursor = [], None
    while True:
        query = f"?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        page = await operator.ok("GET", f"/api/v1/admin/players/{pid}/actions{query}")
        assert set(page) == {"entries", "next_cursor"}
        assert len(page["entries"]) <= limit
        seen += page["entries"]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


async def test_credited_and_refused_attempts_are_listed_with_every_field(operator: Operator, player, ops_app):
    session, client = await player()
    pid = session["player"]["player_id"]
    credited_challenge, ack = await client.play()
    assert ack["ok"], ack
    refused_challenge = await refused_attempt(client)

    async def both_listed() -> list[dict]:
        page = await operator.ok("GET", f"/api/v1/admin/players/{pid}/actions")
        assert len(page["entries"]) == 2, page
        return page["entries"]

    newest, oldest = await eventually(both_listed)
    assert set(newest) == FIELDS and set(oldest) == FIELDS
    assert newest["action_id"] == refused_challenge["action_id"] and newest["outcome"] == "proof_invalid"
    assert newest["points"] == 0
    assert oldest["action_id"] == credited_challenge["action_id"] and oldest["outcome"] == "credited"
    assert oldest["points"] == 10 and oldest["duplicate"] is False
    for entry, challenge in ((oldest, credited_challenge), (newest, refused_challenge)):
        assert entry["action"] == "quick" and entry["difficulty"] == challenge["difficulty"]
        assert entry["client"] == "127.0.0.1"
        assert entry["instance"] and isinstance(entry["instance"], str)
        started = datetime.fromisoformat(entry["started_at"].replace("Z", "+00:00"))
        completed = datetime.fromisoformat(entry["completed_at"].replace("Z", "+00:00"))
        assert entry["play_ms"] == round((completed - started).total_seconds() * 1000) >= 0


async def test_pages_are_newest_first_and_never_overlap(operator: Operator, player):
    session, client = await player()
    pid = session["player"]["player_id"]
    for i in range(13):
        if i % 4 == 3:
            await refused_attempt(client)
        else:
            assert (await client.play())[1]["ok"]

    async def all_written() -> None:
        page = await operator.ok("GET", f"/api/v1/admin/players/{pid}/actions?limit=200")
        assert len(page["entries"]) == 13 and page["next_cursor"] is None

    await eventually(all_written)
    for limit in (1, 4, 5, 13, 50):
        seen = await all_pages(operator, pid, limit)
        assert len(seen) == 13 and len({e["action_id"] for e in seen}) == 13
        assert [e["completed_at"] for e in seen] == sorted((e["completed_at"] for e in seen), reverse=True)
    # Another player's trail is its own.
    other, _ = await player()
    page = await operator.ok("GET", f"/api/v1/admin/players/{other['player']['player_id']}/actions")
    assert page == {"entries": [], "next_cursor": None}


async def test_every_operator_call_about_a_player_is_in_the_operator_log(operator: Operator, player, mongo):
    session, _ = await player()
    pid = session["player"]["player_id"]
    await operator.ok("GET", f"/api/v1/admin/players/{pid}/actions?limit=5")
    await operator.ok("PUT", f"/api/v1/players/{pid}/suspension", json={"suspended": True, "hidden": True})
    await operator.ok("GET", f"/api/v1/admin/players/{pid}/export")
    status, _ = await operator.call("GET", f"/api/v1/admin/players/{pid}/actions?cursor=bad")
    assert status == 400  # a refused call about the player: logged with its code
    await operator.call("GET", "/api/v1/admin/players/nobody-ever/export")
    await operator.ok("DELETE", f"/api/v1/admin/players/{pid}")
    status, _ = await operator.call("GET", f"/api/v1/admin/players/{pid}/export", key=False)
    assert status == 401  # never logged: nothing an anonymous caller sends is stored

    entries = list(mongo.operator_log.find({"player_id": pid}).sort("at_ms", 1))
    assert [(e["action"], e["route"], e["outcome"]) for e in entries] == [
        ("actions", "GET /api/v1/admin/players/{player_id}/actions", "ok"),
        ("suspension", "PUT /api/v1/players/{player_id}/suspension", "ok"),
        ("export", "GET /api/v1/admin/players/{player_id}/export", "ok"),
        ("actions", "GET /api/v1/admin/players/{player_id}/actions", "invalid_payload"),
        ("erase", "DELETE /api/v1/admin/players/{player_id}", "ok"),
    ]
    assert entries[1]["detail"] == {"suspended": True, "hidden": True}
    assert all(e["client"] == "127.0.0.1" and e["instance"] and e["at"] for e in entries)
    [missing] = list(mongo.operator_log.find({"player_id": "nobody-ever"}))
    assert (missing["action"], missing["outcome"]) == ("export", "not_found")
