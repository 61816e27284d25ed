"""Every error code of PROTOCOL.md section 5, against real Redis and the MongoDB-wire server."""

from __future__ import annotations

import asyncio

from app.anticheat.proof import solve
from app.config import Secret
from tests.support import bad_proof


def error_code(reply: dict) -> str:
    assert reply["ok"] is False, reply
    assert isinstance(reply["error"]["message"], str) and reply["error"]["message"]
    return reply["error"]["code"]


async def total_of(http, app_url: str, player_id: str) -> int:
    async with http.get(f"{app_url}/api/v1/players/{player_id}") as resp:
        return (await resp.json())["score"]["total"]


async def test_unknown_action(player):
    _, client = await player()
    assert error_code(await client.call("action:start", {"action": "fly_to_moon"})) == "unknown_action"


async def test_spectator_is_not_a_player(connect, player):
    _, owner = await player()
    challenge = (await owner.call("action:start", {"action": "quick"}))["challenge"]
    spectator = await connect()
    assert error_code(await spectator.call("action:start", {"action": "quick"})) == "not_a_player"
    proof = solve(challenge["token"], challenge["difficulty"])
    reply = await spectator.call("action:complete", {"token": challenge["token"], "proof": proof})
    assert error_code(reply) == "not_a_player"


async def test_tampered_token_is_invalid(player, http, app_url):
    session, client = await player()
    challenge = (await client.call("action:start", {"action": "quick"}))["challenge"]
    token = challenge["token"]
    forged = token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")
    reply = await client.call("action:complete", {"token": forged, "proof": solve(forged, 4)})
    assert error_code(reply) == "token_invalid"
    assert error_code(await client.call("action:complete", {"token": "not-a-token", "proof": "1"})) == "token_invalid"
    assert await total_of(http, app_url, session["player"]["player_id"]) == 0


async def test_another_players_challenge_is_invalid(player, http, app_url):
    _, alice = await player()
    bob_session, bob = await player()
    challenge = (await alice.call("action:start", {"action": "quick"}))["challenge"]
    proof = solve(challenge["token"], challenge["difficulty"])
    reply = await bob.call("action:complete", {"token": challenge["token"], "proof": proof})
    assert error_code(reply) == "token_invalid"
    assert await total_of(http, app_url, bob_session["player"]["player_id"]) == 0
    # The owner can still complete it: a thief's attempt does not burn the challenge.
    reply = await alice.call("action:complete", {"token": challenge["token"], "proof": proof})
    assert reply["ok"] and reply["duplicate"] is False


async def test_token_from_another_secret_is_invalid(player, start_app, settings, new_session, connect):
    other = await start_app(settings, secret_key=Secret("a-different-secret-key-000"))
    _, client = await player()
    challenge = (await client.call("action:start", {"action": "quick"}))["challenge"]
    session = await new_session(url=other.url)
    stranger = await connect(session["token"], url=other.url)
    proof = solve(challenge["token"], challenge["difficulty"])
    reply = await stranger.call("action:complete", {"token": challenge["token"], "proof": proof})
    assert error_code(reply) == "token_invalid"


async def test_expired_challenge(player, http, app_url):
    session, client = await player()
    challenge = (await client.call("action:start", {"action": "brief"}))["challenge"]
    proof = solve(challenge["token"], challenge["difficulty"])
    await asyncio.sleep(1.1)
    reply = await client.call("action:complete", {"token": challenge["token"], "proof": proof})
    assert error_code(reply) == "token_expired"
    assert await total_of(http, app_url, session["player"]["player_id"]) == 0


async def test_too_fast_then_allowed_after_min_ms(player, http, app_url):
    session, client = await player()
    challenge = (await client.call("action:start", {"action": "slow"}))["challenge"]
    assert challenge["min_ms"] == 400
    proof = solve(challenge["token"], challenge["difficulty"])
    reply = await client.call("action:complete", {"token": challenge["token"], "proof": proof})
    assert error_code(reply) == "too_fast"
    assert await total_of(http, app_url, session["player"]["player_id"]) == 0
    await asyncio.sleep(0.45)
    reply = await client.call("action:complete", {"token": challenge["token"], "proof": proof})
    assert reply["ok"] and reply["points"] == 50 and reply["duplicate"] is False


async def test_invalid_proof(player, http, app_url):
    session, client = await player()
    challenge = (await client.call("action:start", {"action": "hard"}))["challenge"]
    assert challenge["difficulty"] == 30
    wrong = bad_proof(challenge["token"], 30)
    reply = await client.call("action:complete", {"token": challenge["token"], "proof": wrong})
    assert error_code(reply) == "proof_invalid"
    assert await total_of(http, app_url, session["player"]["player_id"]) == 0


async def test_rate_limited_per_player_per_action(player):
    _, client = await player()
    for _ in range(2):
        assert (await client.call("action:start", {"action": "limited"}))["ok"]
    reply = await client.call("action:start", {"action": "limited"})
    assert error_code(reply) == "rate_limited"
    assert 0 < reply["error"]["retry_after_ms"] <= 60_000
    # Other actions, and other players, have their own windows.
    assert (await client.call("action:start", {"action": "quick"}))["ok"]
    _, other = await player()
    assert (await other.call("action:start", {"action": "limited"}))["ok"]


async def test_suspended_by_operator(start_app, settings, http, new_session, connect):
    app = await start_app(settings, api_key=Secret("operator-key-0123456789"))
    session = await new_session(url=app.url)
    pid = session["player"]["player_id"]
    client = await connect(session["token"], url=app.url)
    challenge = (await client.call("action:start", {"action": "quick"}))["challenge"]
    url = f"{app.url}/api/v1/players/{pid}/suspension"
    async with http.put(url, json={"suspended": True}) as resp:
        assert resp.status == 401
    headers = {"Authorization": "Bearer operator-key-0123456789"}
    async with http.put(url, json={"suspended": True}, headers=headers) as resp:
        assert resp.status == 200 and await resp.json() == {"player_id": pid, "suspended": True, "hidden": False}
    assert error_code(await client.call("action:start", {"action": "quick"})) == "suspended"
    proof = solve(challenge["token"], challenge["difficulty"])
    reply = await client.call("action:complete", {"token": challenge["token"], "proof": proof})
    assert error_code(reply) == "suspended"
    async with http.put(url, json={"suspended": False}, headers=headers) as resp:
        assert resp.status == 200
    reply = await client.call("action:complete", {"token": challenge["token"], "proof": proof})
    assert reply["ok"] and reply["duplicate"] is False
