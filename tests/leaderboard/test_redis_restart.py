"""Redis restarted empty, or hanging, mid-run: completions go on, and the boards come back equal
to MongoDB's totals by themselves."""

from __future__ import annotations

import signal
import time

from app.anticheat.proof import solve
from tests.processes import RedisProcess
from tests.support import eventually


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
    proof = solve(pending["token"], pending["difficulty"])
    ack = await late.call("action:complete", {"token": pending["token"], "proof": proof})
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


async def test_a_redis_that_hangs_costs_one_timeout_then_completions_go_on_and_boards_catch_up(
        start_app, settings, player, http):
    """Paused, not refused: the first Redis call waits out STORE_TIMEOUT_MS, the rest skip Redis
    (suspension check, queue, rank, announcement) for a cool-down; MongoDB credits every one."""
    own = RedisProcess()
    try:
        app = await start_app(settings, redis_url=own.url, store_timeout_ms=1000)
        session, client = await player(region="eu", url=app.url)
        pid = session["player"]["player_id"]
        await client.play("quick")
        challenges = [(await client.call("action:start", {"action": "quick"}))["challenge"] for _ in range(3)]

        own.proc.send_signal(signal.SIGSTOP)
        try:
            took = []
            for ch in challenges:
                started = time.monotonic()
                proof = solve(ch["token"], ch["difficulty"])
                ack = await client.call("action:complete", {"token": ch["token"], "proof": proof})
                took.append(time.monotonic() - started)
                assert ack["ok"], ack
            assert ack["score"]["total"] == 40
            assert took[0] < 3 and max(took[1:]) < 0.5, took
            started = time.monotonic()
            assert (await client.call("action:start", {"action": "quick"}))["ok"]
            assert time.monotonic() - started < 0.5
        finally:
            own.proc.send_signal(signal.SIGCONT)

        async def board_caught_up() -> None:
            async with http.get(f"{app.url}/api/v1/leaderboards/region:eu") as resp:
                body = await resp.json()
            assert {r["player_id"]: r["score"] for r in body.get("entries", [])} == {pid: 40}, body

        await eventually(board_caught_up, timeout=15)
    finally:
        own.stop()
