"""Half-done credits, as an instance killed between the log insert and the ack leaves them
(the log entry pending; the totals applied or not; no standing, achievements or ack): the
reconciler finishes each within its interval, and a client's retry that gets there first
finishes all of it itself and answers the credit, once."""

from __future__ import annotations

import time

import pytest

from app.anticheat.proof import solve
from app.clock import now_ms
from app.scores.repository import CreditRecord, ScoreRepository, _apply_op, _log_doc
from app.server import MONGO
from tests.support import eventually


@pytest.fixture
async def rig(start_app, settings, player):
    """An app whose reconciler scans every second with a 2 s grace, a player, and a challenge of it
    whose credit is left half-done in MongoDB exactly as a killed instance leaves it."""
    app = await start_app(settings, reconcile_interval_s=1, store_timeout_ms=1000)
    session, client = await player(url=app.url)
    pid = session["player"]["player_id"]
    challenge = (await client.call("action:start", {"action": "quick"}))["challenge"]
    payload = {"token": challenge["token"], "proof": solve(challenge["token"], challenge["difficulty"])}
    repo = ScoreRepository(app.app[MONGO])
    rec = CreditRecord(challenge["action_id"], pid, "quick", 10, now_ms())

    async def leave_half_done(totals: bool) -> None:
        await repo.actions.insert_one(_log_doc(rec))
        if totals:
            await repo.players.bulk_write([_apply_op(rec, "killed-instance")])

    return app, client, pid, payload, repo, leave_half_done


async def profile(http, url: str, pid: str) -> dict:
    async with http.get(f"{url}/api/v1/players/{pid}") as resp:
        return await resp.json()


async def board_score(http, url: str, pid: str) -> int | None:
    async with http.get(f"{url}/api/v1/leaderboards/region:eu", params={"limit": "100"}) as resp:
        rows = (await resp.json())["entries"]
    return next((row["score"] for row in rows if row["player_id"] == pid), None)


@pytest.mark.parametrize("totals", [True, False], ids=["after-totals", "after-log-insert"])
async def test_reconciler_finishes_a_half_done_credit_by_itself(rig, http, totals):
    app, client, pid, payload, repo, leave_half_done = rig
    await leave_half_done(totals)
    started = time.monotonic()

    async def finished() -> None:
        assert await board_score(http, app.url, pid) == 10
        body = await profile(http, app.url, pid)
        assert body["score"]["total"] == 10
        assert "first_action" in [a["id"] for a in body["achievements"]]
        # The ack is stored last, a moment after the board and the achievements: waited for too.
        log = await repo.actions.find_one({"player_id": pid})
        assert log["state"] == "done" and log["ack"]["score"]["total"] == 10

    await eventually(finished, timeout=15)
    assert time.monotonic() - started < 15
    log = await repo.actions.find_one({"player_id": pid})
    assert "first_action" in log["ack"]["achievements"]
    # The client's retry, whenever it comes, answers that credit once.
    again = await client.call("action:complete", payload)
    assert again["ok"] and again["duplicate"] is True and again["score"]["total"] == 10, again
    assert (await profile(http, app.url, pid))["score"]["total"] == 10


@pytest.mark.parametrize("totals", [True, False], ids=["after-totals", "after-log-insert"])
async def test_a_retry_that_finds_a_half_done_credit_finishes_all_of_it(rig, http, drained, totals):
    app, client, pid, payload, repo, leave_half_done = rig
    await leave_half_done(totals)
    reply = await client.call("action:complete", payload)  # before the reconciler's grace is over
    assert reply["ok"], reply
    assert reply["points"] == 10 and reply["score"]["total"] == 10
    assert "first_action" in reply["achievements"]
    again = await client.call("action:complete", payload)
    assert {**again, "duplicate": None} == {**reply, "duplicate": None} and again["duplicate"] is True
    await drained()

    async def on_the_board() -> None:
        assert await board_score(http, app.url, pid) == 10

    await eventually(on_the_board, timeout=5)
    assert (await profile(http, app.url, pid))["score"]["total"] == 10
    await client.wait_event("achievement:unlocked")
