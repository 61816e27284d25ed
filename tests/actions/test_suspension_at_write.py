"""Suspension holds at the write: with Redis down the hot-path check fails open, yet a suspended
player is never credited, because the totals update itself refuses it."""

from __future__ import annotations

import pymongo
import pytest

from app.anticheat.proof import solve
from app.config import Secret
from tests.processes import RedisProcess

API_KEY = "operator-key-0123456789"


@pytest.fixture
def own_redis():
    proc = RedisProcess()
    yield proc
    proc.stop()


async def test_suspended_player_is_never_credited_with_redis_down(start_app, settings, player, http, own_redis):
    app = await start_app(settings, redis_url=own_redis.url, store_timeout_ms=1000, api_key=Secret(API_KEY))
    session, client = await player(url=app.url)
    pid = session["player"]["player_id"]
    started = [(await client.call("action:start", {"action": "quick"}))["challenge"] for _ in range(2)]
    async with http.put(f"{app.url}/api/v1/players/{pid}/suspension", json={"suspended": True},
                        headers={"Authorization": f"Bearer {API_KEY}"}) as resp:
        assert resp.status == 200, await resp.text()
    own_redis.stop()
    for challenge in started:
        reply = await client.call("action:complete", {"token": challenge["token"],
                                                      "proof": solve(challenge["token"], challenge["difficulty"])})
        assert reply["ok"] is False and reply["error"]["code"] == "suspended", reply
    # While Redis is away challenges are still issued (fail open); the write refuses them all the same.
    fresh = await client.call("action:start", {"action": "quick"})
    if fresh["ok"]:
        challenge = fresh["challenge"]
        reply = await client.call("action:complete", {"token": challenge["token"],
                                                      "proof": solve(challenge["token"], challenge["difficulty"])})
        assert reply["ok"] is False and reply["error"]["code"] == "suspended", reply
    mongo = pymongo.MongoClient(settings.mongodb_url)
    try:
        doc = mongo[settings.mongodb_db].players.find_one({"_id": pid})
        assert doc["total"] == 0 and doc["actions"] == 0
        assert mongo[settings.mongodb_db].actions.count_documents({"player_id": pid}) == 0
    finally:
        mongo.close()
