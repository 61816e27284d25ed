"""Redis restarted empty mid-run: the boards come back equal to MongoDB's totals, by themselves."""

from __future__ import annotations

from app.anticheat.proof import solve
from tests.conftest import eventually


async def test_boards_rebuilt_from_mongodb_after_redis_comes_back_empty(start_app, settings, redis_proc, player, http):
    app = await start_app(settings)
    players = [await player(region="eu", url=app.url) for _ in range(3)]
    for i, (_, client) in enumerate(players):
        for _ in range(i + 1):
            await client.play("quick")
    _, late = players[0]
    pending = (await late.call("action:start", {"action": "quick"}))["challenge"]

    redis_proc.stop()
    # Redis down: completions still credit in MongoDB and are acknowledged.
    ack = await late.call("action:complete", {"token": pending["token"], "proof": solve(pending["token"], pending["difficulty"])})
    assert ack["ok"] and ack["score"]["total"] == 20, ack
    # Challenges are still issued (rate limits counted in the instance), and credited.
    challenge, ack = await late.play("quick")
    assert ack["ok"] and ack["score"]["total"] == 30, ack
    redis_proc.start()

    async def profile_totals() -> dict[str, int]:
        out = {}
        for session, _ in players:
            pid = session["player"]["player_id"]
            async with http.get(f"{app.url}/api/v1/players/{pid}") as resp:
                out[pid] = (await resp.json())["score"]["total"]
        return out

    totals = await profile_totals()
    assert sorted(totals.values()) == [20, 30, 30]

    async def board_matches() -> None:
        for board in ("global", "region:eu"):
            async with http.get(f"{app.url}/api/v1/leaderboards/{board}") as resp:
                body = await resp.json()
            assert {r["player_id"]: r["score"] for r in body.get("entries", [])} == totals, body

    await eventually(board_matches, timeout=15)
    for _, client in players:
        await client.play("quick")
    totals = await profile_totals()
    await eventually(board_matches, timeout=15)
