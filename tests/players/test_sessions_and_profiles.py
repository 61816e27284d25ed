"""POST /api/v1/sessions and GET /api/v1/players/<id>, and socket auth on connect."""

from __future__ import annotations

import asyncio

import pytest

from tests.support import connect_refusal


async def test_session_shape_and_guild_null(http, app_url):
    body = {"player_id": "ann_1", "name": "Ann", "region": "eu"}
    async with http.post(f"{app_url}/api/v1/sessions", json=body) as resp:
        assert resp.status == 201
        session = await resp.json()
    assert set(session) == {"token", "player", "expires_in", "guest_key"}
    assert session["player"] == {"player_id": "ann_1", "name": "Ann", "region": "eu", "guild": None}
    assert session["expires_in"] == 86400 and isinstance(session["token"], str)
    assert isinstance(session["guest_key"], str) and len(session["guest_key"]) >= 32


async def test_new_session_updates_name(http, app_url, new_session):
    first = await new_session("bo", name="Bo")
    body = {"player_id": "bo", "name": "Bo the Bold", "region": "eu", "guild": "owls", "guest_key": first["guest_key"]}
    async with http.post(f"{app_url}/api/v1/sessions", json=body) as resp:
        assert resp.status == 201, await resp.text()
        assert "guest_key" not in await resp.json()  # only the creating session gets it
    async with http.get(f"{app_url}/api/v1/players/bo") as resp:
        profile = await resp.json()
    assert profile["player"] == {"player_id": "bo", "name": "Bo the Bold", "region": "eu", "guild": "owls"}


async def test_profile_lists_ranks_and_achievements(player, http, app_url, drained):
    session, client = await player(region="na", guild="owls")
    _, ack = await client.play("big")
    assert ack["achievements"] == ["first_action", "score_100", "top_10", "top_1"]
    pid = session["player"]["player_id"]
    await drained()
    async with http.get(f"{app_url}/api/v1/players/{pid}") as resp:
        profile = await resp.json()
    assert profile["ranks"] == {"global": 1, "region": 1, "guild": 1}
    assert profile["score"] == {"total": 600, "daily": 600, "weekly": 600}
    assert [a["id"] for a in profile["achievements"]][:1] == ["first_action"]
    assert all(a["unlocked_at"].endswith("Z") and a["name"] for a in profile["achievements"])
    _, ack = await client.play("big")
    assert ack["achievements"] == ["score_1000"]


async def test_unknown_player_is_not_found(http, app_url):
    async with http.get(f"{app_url}/api/v1/players/ghost") as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "not_found"


@pytest.mark.parametrize("auth, code", [
    ({"token": "garbage"}, "token_invalid"),
    ({"token": 12}, "token_invalid"),
    ({"nope": 1}, "token_invalid"),
])
async def test_bad_token_refuses_connection(app_url, auth, code):
    assert await connect_refusal(app_url, auth) == {"message": code}


async def test_expired_session_token_refused(start_app, settings, new_session):
    app = await start_app(settings, session_ttl_s=1)
    session = await new_session(url=app.url)
    await asyncio.sleep(2.1)
    assert await connect_refusal(app.url, {"token": session["token"]}) == {"message": "token_expired"}
