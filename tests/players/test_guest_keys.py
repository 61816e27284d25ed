"""Returning guests (PROTOCOL.md 3, v1.1): the creating session's guest_key is the only way back
to a guest player; without it, or with a wrong one, 401 and the player exactly as it was; a player
minted with API_KEY is never reachable by a guest; two guests racing for one new id: one wins."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid

import pytest
from pymongo import AsyncMongoClient

from app.config import Secret

API_KEY = "integration-api-key-0123456789"
BEARER = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
async def players_collection(settings):
    """The app's own `players` collection, read directly: "exactly as it was" means the document."""
    client = AsyncMongoClient(settings.mongodb_url, tz_aware=True)
    yield client[settings.mongodb_db]["players"]
    await client.close()


async def post_session(http, url: str, body: dict, headers: dict | None = None) -> tuple[int, dict]:
    async with http.post(f"{url}/api/v1/sessions", json=body, headers=headers or {}) as resp:
        return resp.status, await resp.json()


def new_id() -> str:
    return f"g{uuid.uuid4().hex[:10]}"


async def test_returning_guest_without_its_key_is_refused_and_changes_nothing(
        http, app_url, connect, players_collection):
    pid = new_id()
    status, first = await post_session(http, app_url, {"player_id": pid, "name": "Ann", "region": "eu",
                                                      "guild": "owls"})
    assert status == 201 and len(first["guest_key"]) >= 32
    key = first["guest_key"]
    earlier = await connect(first["token"])
    _, ack = await earlier.play("quick")
    assert ack["ok"], ack
    before = await players_collection.find_one({"_id": pid})
    assert key not in str(before)  # only its hash is kept
    assert before["guest_key_sha256"] == hashlib.sha256(key.encode()).hexdigest()
    assert before["minted_by"] == "guest"

    _, other = await post_session(http, app_url, {"player_id": new_id(), "name": "Other", "region": "eu"})
    takeover = {"player_id": pid, "name": "Mallory", "region": "na", "guild": "wolves"}
    attempts = [
        takeover,                                                    # no key
        {**takeover, "guest_key": None},                             # null: no key either
        {**takeover, "guest_key": secrets.token_urlsafe(32)},        # a wrong key of the right shape
        {**takeover, "guest_key": other["guest_key"]},               # another player's key
        {**takeover, "guest_key": key[:-1]},                         # almost
        {**takeover, "guest_key": key.swapcase()},
        {**takeover, "guest_key": key + "x"},
        {**takeover, "guest_key": "\ud800"},                         # a lone surrogate: just wrong
    ]
    for body in attempts:
        status, reply = await post_session(http, app_url, body)
        assert status == 401, (body, reply)
        assert reply["error"]["code"] == "unauthorized"
        assert "token" not in reply
    assert await players_collection.find_one({"_id": pid}) == before
    async with http.get(f"{app_url}/api/v1/players/{pid}") as resp:
        profile = await resp.json()
    assert profile["player"] == {"player_id": pid, "name": "Ann", "region": "eu", "guild": "owls"}
    assert profile["score"]["total"] == 10
    # The earlier session is untouched: its open connection still plays, and its token still connects.
    _, ack = await earlier.play("quick")
    assert ack["ok"] and ack["score"]["total"] == 20, ack
    again = await connect(first["token"])
    assert (await again.call("action:start", {"action": "quick"}))["ok"]

    # With its key, the guest is back, and its change applies.
    status, back = await post_session(http, app_url, {**takeover, "guest_key": key})
    assert status == 201, back
    assert back["player"] == {"player_id": pid, "name": "Mallory", "region": "na", "guild": "wolves"}
    assert "guest_key" not in back  # the key stays the one the player was created with
    status, _ = await post_session(http, app_url, {**takeover, "name": "Ann", "guest_key": key})
    assert status == 201


@pytest.mark.parametrize("guest_key", ["", "k" * 129, 12, ["k"], {"k": 1}, True])
async def test_malformed_guest_key_is_invalid_payload(http, app_url, guest_key):
    status, reply = await post_session(http, app_url, {"player_id": new_id(), "name": "A", "region": "eu",
                                                      "guest_key": guest_key})
    assert status == 400 and reply["error"]["code"] == "invalid_payload", reply


async def test_guest_key_sent_for_a_new_player_is_ignored(http, app_url):
    """A browser that kept a key for an id that is no player (yet) just creates it, with a key of its own."""
    stale = secrets.token_urlsafe(32)
    status, reply = await post_session(http, app_url, {"player_id": new_id(), "name": "A", "region": "eu",
                                                      "guest_key": stale})
    assert status == 201 and reply["guest_key"] != stale and len(reply["guest_key"]) >= 32


async def test_api_minted_player_is_never_reachable_by_guests(start_app, settings, http, players_collection):
    app = await start_app(settings, api_key=Secret(API_KEY))
    pid = new_id()
    status, minted = await post_session(http, app.url, {"player_id": pid, "name": "Acct", "region": "eu"}, BEARER)
    assert status == 201 and "guest_key" not in minted
    before = await players_collection.find_one({"_id": pid})
    assert before["minted_by"] == "api"

    takeover = {"player_id": pid, "name": "Mallory", "region": "na"}
    for body in (takeover, {**takeover, "guest_key": secrets.token_urlsafe(32)}, {**takeover, "guest_key": "x"}):
        status, reply = await post_session(http, app.url, body)
        assert status == 401 and reply["error"]["code"] == "unauthorized", (body, reply)
    assert await players_collection.find_one({"_id": pid}) == before

    # The account service needs no guest key, for its own players or for guests'.
    status, again = await post_session(http, app.url, {**takeover, "name": "Acct 2"}, BEARER)
    assert status == 201 and again["player"]["name"] == "Acct 2" and "guest_key" not in again
    gid = new_id()
    status, guest = await post_session(http, app.url, {"player_id": gid, "name": "Guest", "region": "eu"})
    assert status == 201 and guest["guest_key"]
    status, taken = await post_session(http, app.url, {"player_id": gid, "name": "Renamed", "region": "eu"}, BEARER)
    assert status == 201 and taken["player"]["name"] == "Renamed"
    # The guest's key still works after the account service's session.
    status, _ = await post_session(http, app.url, {"player_id": gid, "name": "Guest", "region": "eu",
                                                  "guest_key": guest["guest_key"]})
    assert status == 201


async def test_guest_sessions_off_with_the_api_key_mint_players_without_keys(start_app, settings, http):
    app = await start_app(settings, api_key=Secret(API_KEY), allow_guest_sessions=False)
    status, minted = await post_session(http, app.url, {"player_id": new_id(), "name": "Acct", "region": "eu"},
                                        BEARER)
    assert status == 201 and "guest_key" not in minted


async def test_two_guests_racing_for_one_new_id(http, app_url, players_collection):
    """Exactly one creates the player (and holds its key); every other is a returning guest
    without the right key: 401."""
    for _ in range(5):
        pid = new_id()
        bodies = [{"player_id": pid, "name": f"Racer {i}", "region": "eu"} for i in range(6)]
        replies = await asyncio.gather(*(post_session(http, app_url, body) for body in bodies))
        won = [(i, reply) for i, (status, reply) in enumerate(replies) if status == 201]
        assert len(won) == 1, replies
        assert sorted(status for status, _ in replies) == [201] + [401] * 5, replies
        winner, reply = won[0]
        doc = await players_collection.find_one({"_id": pid})
        assert doc["name"] == f"Racer {winner}" == reply["player"]["name"]
        status, _ = await post_session(http, app_url, {**bodies[winner], "guest_key": reply["guest_key"]})
        assert status == 201
