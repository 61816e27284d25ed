"""One-time use: retries answer the first ack, concurrent completions credit once, from any instance."""

from __future__ import annotations

import asyncio

from app.anticheat.proof import solve


async def profile(http, url: str, player_id: str) -> dict:
    async with http.get(f"{url}/api/v1/players/{player_id}") as resp:
        return await resp.json()


async def test_retry_returns_first_ack_without_second_credit(player, http, app_url):
    session, client = await player()
    challenge, first = await client.play("quick")
    proof = solve(challenge["token"], challenge["difficulty"])
    again = await client.call("action:complete", {"token": challenge["token"], "proof": proof})
    assert again == {**first, "duplicate": True}
    assert (await profile(http, app_url, session["player"]["player_id"]))["score"]["total"] == 10


async def test_retry_after_expiry_still_answers(player, http, app_url):
    session, client = await player()
    challenge, first = await client.play("brief")
    await asyncio.sleep(1.1)
    proof = solve(challenge["token"], challenge["difficulty"])
    again = await client.call("action:complete", {"token": challenge["token"], "proof": proof})
    assert again == {**first, "duplicate": True}
    assert (await profile(http, app_url, session["player"]["player_id"]))["score"]["total"] == 5


async def test_retry_from_another_connection_and_instance(start_app, settings, new_session, connect, http):
    one, two = await start_app(settings), await start_app(settings)
    session = await new_session(url=one.url)
    tab = await connect(session["token"], url=one.url)
    challenge, first = await tab.play("quick")
    other = await connect(session["token"], url=two.url)
    proof = solve(challenge["token"], challenge["difficulty"])
    again = await other.call("action:complete", {"token": challenge["token"], "proof": proof})
    assert again == {**first, "duplicate": True}


async def test_concurrent_completions_credit_exactly_once(start_app, settings, new_session, connect, http):
    one, two = await start_app(settings), await start_app(settings)
    session = await new_session(url=one.url)
    pid = session["player"]["player_id"]
    clients = [await connect(session["token"], url=url) for url in (one.url, two.url, one.url, two.url)]
    for _ in range(3):
        started = await clients[0].call("action:start", {"action": "quick"})
        challenge = started["challenge"]
        payload = {"token": challenge["token"], "proof": solve(challenge["token"], challenge["difficulty"])}
        replies = await asyncio.gather(*(c.call("action:complete", payload) for c in clients for _ in range(3)))
        assert all(r["ok"] for r in replies), replies
        assert sum(1 for r in replies if r["duplicate"] is False) == 1
        firsts = {(r["action_id"], r["points"], r["score"]["total"]) for r in replies}
        assert len(firsts) == 1, firsts
    assert (await profile(http, one.url, pid))["score"]["total"] == 30


async def test_many_players_concurrently_each_credited_once(player, http, app_url, drained):
    players = [await player() for _ in range(8)]

    async def play_three(client):
        return [await client.play("quick") for _ in range(3)]

    await asyncio.gather(*(play_three(c) for _, c in players))
    for session, _ in players:
        assert (await profile(http, app_url, session["player"]["player_id"]))["score"]["total"] == 30
    await drained()
    async with http.get(f"{app_url}/api/v1/leaderboards/global?limit=100") as resp:
        board = await resp.json()
    assert board["total_players"] == 8
    assert [row["score"] for row in board["entries"]] == [30] * 8
    assert [row["rank"] for row in board["entries"]] == list(range(1, 9))
