"""Scores survive a restart: of an instance on shared stores, and of `make run` on embedded defaults."""

from __future__ import annotations

from dataclasses import replace

import aiohttp

from tests.support import Client, eventually

# A returning guest sends the guest_key its first session got (PROTOCOL.md 3, v1.1); for a
# player that does not exist yet a key is ignored and a new one minted.
_GUEST_KEYS: dict[str, str] = {}


async def _play(url: str, http: aiohttp.ClientSession, player_id: str, times: int) -> dict:
    body = {"player_id": player_id, "name": "Keeper", "region": "sa"}
    if player_id in _GUEST_KEYS:
        body["guest_key"] = _GUEST_KEYS[player_id]
    async with http.post(f"{url}/api/v1/sessions", json=body) as resp:
        assert resp.status == 201, await resp.text()
        session = await resp.json()
        token = session["token"]
        if "guest_key" in session:
            _GUEST_KEYS[player_id] = session["guest_key"]
    client = Client()
    await client.sio.connect(url, auth={"token": token}, transports=["websocket"])
    try:
        for _ in range(times):
            _, ack = await client.play("quick")
            assert ack["ok"], ack
        return ack
    finally:
        await client.sio.disconnect()


async def _state(url: str, http: aiohttp.ClientSession, player_id: str) -> tuple[dict, dict]:
    async with http.get(f"{url}/api/v1/players/{player_id}") as resp:
        profile = await resp.json()
    async with http.get(f"{url}/api/v1/leaderboards/region:sa") as resp:
        board = await resp.json()
    return profile, board


async def test_restart_on_shared_stores_keeps_scores(start_app, settings, http):
    first = await start_app(settings)
    await _play(first.url, http, "keeper", 3)

    async def on_board() -> tuple[dict, dict]:
        state = await _state(first.url, http, "keeper")
        assert state[0]["ranks"]["region"] == 1
        return state

    before = await eventually(on_board)
    await first.server.close()
    second = await start_app(settings)
    assert await _state(second.url, http, "keeper") == before
    assert before[0]["score"]["total"] == 30


async def test_restart_on_embedded_defaults_keeps_scores_and_boards(start_app, settings, tmp_path, http):
    embedded = replace(settings, mongodb_url=None, redis_url=None, data_dir=tmp_path / "var")
    first = await start_app(embedded)
    await _play(first.url, http, "keeper", 2)

    async def on_board(url: str) -> tuple[dict, dict]:
        profile, board = await _state(url, http, "keeper")
        assert profile["score"]["total"] == 20 and [r["player_id"] for r in board["entries"]] == ["keeper"]
        # Flushed before the profile was read too (a flush can land between the two reads).
        assert profile["ranks"]["region"] == 1, profile
        return profile, board

    profile, board = await eventually(lambda: on_board(first.url))
    await first.server.close()

    second = await start_app(embedded)
    assert await eventually(lambda: on_board(second.url)) == (profile, board)
    ack = await _play(second.url, http, "keeper", 1)
    assert ack["score"]["total"] == 30
    assert (tmp_path / "var" / "documents").is_dir()
