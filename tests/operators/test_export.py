"""GET /api/v1/admin/players/<id>/export: every datum kept about the player, as one JSON
document; never its guest key's hash or the credit path's guard map."""

from __future__ import annotations

import json

from app.clock import iso, now_ms
from tests.operators.test_audit_route import refused_attempt
from tests.support import OPERATOR_AUTH, Operator, eventually


async def test_the_export_holds_every_datum_kept(operator: Operator, player, mongo, http):
    session, client = await player(guild="owls", name="Ann Export")
    pid = session["player"]["player_id"]
    challenges = []
    for _ in range(2):
        challenge, ack = await client.play()
        assert ack["ok"]
        challenges.append(challenge)
    await refused_attempt(client)
    since = now_ms() - 5_000
    mongo.players.update_one({"_id": pid}, {"$set": {"suspicion": {
        "score": 0.8, "signals": {"regular": {"figure": 0.9, "cv": 0.01}}, "difficulty_bonus": 5, "since": since,
        "updated_ms": since + 1}}})
    await operator.ok("PUT", f"/api/v1/players/{pid}/suspension", json={"suspended": True, "hidden": False})
    async with http.post(f"{operator.url}/api/v1/players/{pid}/sessions/revoke", headers=OPERATOR_AUTH) as resp:
        revoked_before = (await resp.json())["revoked_before"]

    async def trail_written() -> None:
        assert len((await operator.ok("GET", f"/api/v1/admin/players/{pid}/actions"))["entries"]) == 3

    await eventually(trail_written)
    export = await operator.ok("GET", f"/api/v1/admin/players/{pid}/export")

    assert set(export) == {"player_id", "exported_at", "profile", "totals", "achievements", "credits",
                           "audit_trail", "sessions", "moderation", "suspicion", "operator_log", "other"}
    assert export["player_id"] == pid
    profile = export["profile"]
    assert (profile["player_id"], profile["name"], profile["region"], profile["guild"]) == (pid, "Ann Export", "eu",
                                                                                            "owls")
    assert profile["minted_by"] == "guest" and profile["moves"] == 0 and profile["created_at"].endswith("Z")
    totals = export["totals"]
    assert totals["total"] == 20 and totals["actions"] == 2
    assert sum(totals["days"].values()) == 20 and sum(totals["weeks"].values()) == 20
    assert len(totals["active_days"]) == 1 and set(totals["last_credited_by_action"]) == {"quick"}
    assert "first_action" in {a["id"] for a in export["achievements"]}
    assert all(set(a) == {"id", "name", "unlocked_at"} for a in export["achievements"])
    assert [c["action_id"] for c in export["credits"]] == [c["action_id"] for c in challenges]
    assert [e["outcome"] for e in export["audit_trail"]] == ["credited", "credited", "proof_invalid"]
    assert export["audit_trail"][0]["client"] == "127.0.0.1"
    assert export["sessions"] == {"revoked_before": revoked_before}
    assert export["moderation"] == {"suspended": True, "hidden": False}
    assert export["suspicion"] == {"score": 0.8, "signals": {"regular": {"figure": 0.9, "cv": 0.01}},
                                   "difficulty_bonus": 5, "since": iso(since), "updated_at": iso(since + 1)}
    logged = [(e["action"], e["outcome"]) for e in export["operator_log"]]
    assert logged[0] == ("suspension", "ok") and set(logged[1:]) == {("actions", "ok")}  # the trail, polled
    assert export["operator_log"][0]["detail"] == {"suspended": True, "hidden": False}
    assert export["operator_log"][0]["route"] == "PUT /api/v1/players/{player_id}/suspension"
    # Never the guest key's hash nor the guard map, anywhere in the document.
    text = json.dumps(export)
    stored = mongo.players.find_one({"_id": pid})
    assert stored["guest_key_sha256"] not in text and "guest_key" not in text
    assert "applied_ids" in stored and "applied_ids" not in text
    for action_id in stored["applied_ids"]:
        assert text.count(action_id) == 2  # the credit and its audit entry, not a guard
    # The export itself is logged.
    assert [e["action"] for e in mongo.operator_log.find({"player_id": pid}).sort("at_ms", 1)][-1] == "export"
