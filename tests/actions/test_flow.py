"""One action end to end over a real Socket.IO client, real Redis and the MongoDB-wire server."""

from __future__ import annotations


async def test_play_one_action_credits_catalogue_points(player, http, app_url, drained):
    session, client = await player(region="eu")
    challenge, ack = await client.play("quick")
    assert ack == {
        "ok": True,
        "action_id": challenge["action_id"],
        "points": 10,
        "duplicate": False,
        "score": {"total": 10, "daily": 10, "weekly": 10},
        "achievements": ["first_action", "top_10", "top_1"],
    }
    pid = session["player"]["player_id"]
    await drained()
    async with http.get(f"{app_url}/api/v1/players/{pid}") as resp:
        profile = await resp.json()
    assert profile["score"] == {"total": 10, "daily": 10, "weekly": 10}
    assert profile["ranks"] == {"global": 1, "region": 1, "guild": None}
    assert {a["id"] for a in profile["achievements"]} == {"first_action", "top_10", "top_1"}
    unlocked = await client.wait_event("achievement:unlocked", 3)
    assert {u["id"] for u in unlocked} == {"first_action", "top_10", "top_1"}


async def test_the_rank_in_an_ack_counts_everyone_with_as_many_points_or_more(player, drained):
    """The global rank a credit reaches (read in the delta queue's append): a player that ties
    the leader is ranked behind it, so it is not Champion."""
    _, leader = await player(region="eu")
    await leader.play("quick")
    await drained()
    _, second = await player(region="na")
    _, ack = await second.play("quick")
    assert ack["score"]["total"] == 10 and ack["achievements"] == ["first_action", "top_10"]
