"""DELETE /api/v1/admin/players/<id>: the player goes off every board at once, its profile,
totals and achievements are deleted, its audit entries keep no address, its sessions are
revoked; it stays gone after a rebuild of the boards, after Redis restarts empty, and when a
restored backup brings its document back; a later session for the id starts from zero."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
import redis.asyncio

from app.clock import now_ms
from app.leaderboard.boards import Standing
from app.leaderboard.keys import PLACE_KEY
from app.leaderboard.queue import DeltaQueue
from app.server import REBUILD, REDIS
from tests.operators.test_hidden import BOARDS, PERIODS, RoomModel, on_every_board
from tests.processes import RedisProcess
from tests.support import Operator, connect_refusal, eventually, open_client


async def test_erase_takes_the_player_off_every_board_and_deletes_what_is_kept(operator: Operator, player, mongo,
                                                                              drained, redis_proc):
    ann_s, ann = await player(guild="owls")
    eve_s, eve = await player(guild="owls")
    a, e = ann_s["player"]["player_id"], eve_s["player"]["player_id"]
    for client, times in ((ann, 2), (eve, 4)):
        for _ in range(times):
            assert (await client.play())[1]["ok"]
    await drained()
    models = {room: RoomModel((await ann.call("watch", {"room": room}))["snapshot"])
              for room in ("region:eu", "guild:owls")}
    assert models["guild:owls"].ids("all") == [e, a]
    assert mongo.achievements.count_documents({"player_id": e}) > 0

    assert await operator.ok("DELETE", f"/api/v1/admin/players/{e}") == {"player_id": e, "erased": True}
    after = await on_every_board(operator)
    assert after == {(board, period): [a] for board in BOARDS for period in PERIODS}
    status, reply = await operator.call("GET", f"/api/v1/players/{e}")
    assert status == 404 and reply["error"]["code"] == "not_found"
    status, _ = await operator.call("GET", f"/api/v1/admin/players/{e}/export")
    assert status == 404
    # The audit route still answers: every entry kept, none with an address.
    trail = await operator.ok("GET", f"/api/v1/admin/players/{e}/actions")
    assert len(trail["entries"]) == 4 and all(entry["client"] is None for entry in trail["entries"])
    # Nothing else kept in MongoDB, and the erasure recorded.
    assert mongo.players.find_one({"_id": e}) is None
    assert mongo.achievements.count_documents({"player_id": e}) == 0
    assert mongo.actions.count_documents({"player_id": e}) == 0
    assert mongo.erasures.find_one({"_id": e})["erased_ms"] <= now_ms()
    # Nor in Redis: no name, no placement.
    r = redis.asyncio.Redis.from_url(redis_proc.url)
    try:
        assert await r.hget("names", e) is None and await r.hget(PLACE_KEY, e) is None
    finally:
        await r.aclose()

    async def watchers_saw_it_leave() -> None:
        for room in models:
            models[room].catch_up(ann)
            assert all(models[room].ids(period) == [a] for period in PERIODS), models[room].boards

    await eventually(watchers_saw_it_leave)
    # Its sessions are revoked: its connection is closed, and its token refused from then on.
    async def closed() -> None:
        assert not eve.sio.connected

    await eventually(closed, timeout=6)
    assert await connect_refusal(operator.url, {"token": eve_s["token"]}) == {"message": "token_invalid"}
    # Asked again: the same answer (idempotent), still nothing kept.
    assert await operator.ok("DELETE", f"/api/v1/admin/players/{e}") == {"player_id": e, "erased": True}
    await drained()
    assert await on_every_board(operator) == after


async def test_an_erased_player_stays_gone_after_a_rebuild_a_late_standing_and_a_restored_backup(
        operator: Operator, ops_app, player, mongo, drained, redis_proc):
    keep_s, keep = await player()
    gone_s, gone = await player()
    k, g = keep_s["player"]["player_id"], gone_s["player"]["player_id"]
    assert (await keep.play())[1]["ok"]
    for _ in range(3):
        assert (await gone.play())[1]["ok"]
    await drained()
    backup = mongo.players.find_one({"_id": g})
    achievements = list(mongo.achievements.find({"player_id": g}))
    await operator.ok("DELETE", f"/api/v1/admin/players/{g}")

    # A standing of the erased player still in flight (a credit that raced the erasure).
    late = DeltaQueue(ops_app.app[REDIS])
    await late.push(Standing.from_player(backup, now_ms()))
    await drained()
    assert await operator.board("global") == [k]

    # `python -m app rebuild-leaderboards`, over the boards as they are.
    await ops_app.app[REBUILD]()
    await drained()
    assert await operator.board("global") == [k]

    # A restored backup: the erased player's document and achievements are back in MongoDB.
    mongo.players.insert_one(backup)
    mongo.achievements.insert_many(achievements)
    await ops_app.app[REBUILD]()
    await drained()
    assert await operator.board("global") == [k]
    assert mongo.players.find_one({"_id": g}) is None
    assert mongo.achievements.count_documents({"player_id": g}) == 0
    status, _ = await operator.call("GET", f"/api/v1/players/{g}")
    assert status == 404


async def test_a_new_session_for_an_erased_id_starts_a_new_player_from_zero(operator: Operator, ops_app, player,
                                                                            new_session, connect, drained, mongo):
    old_s, old = await player(guild="owls", name="Old Name")
    pid = old_s["player"]["player_id"]
    for _ in range(3):
        assert (await old.play())[1]["ok"]
    await drained()
    erased_doc = mongo.players.find_one({"_id": pid})
    await operator.ok("DELETE", f"/api/v1/admin/players/{pid}")

    # A guest session for the id: no guest key is asked (the player it had is gone).
    fresh = await new_session(player_id=pid, name="New Name", region="na")
    assert fresh["player"] == {"player_id": pid, "name": "New Name", "region": "na", "guild": None}
    assert "guest_key" in fresh and fresh["guest_key"] != old_s["guest_key"]
    profile = await operator.ok("GET", f"/api/v1/players/{pid}")
    assert profile["score"] == {"total": 0, "daily": 0, "weekly": 0} and profile["achievements"] == []
    client = await connect(fresh["token"])
    _, ack = await client.play()
    assert ack["ok"] and ack["score"]["total"] == 10, ack
    await drained()
    assert await operator.board("global") == [pid]
    assert await operator.board("region:na") == [pid] and await operator.board("region:eu") == []
    # A late standing of the erased player (30 points, in eu and owls) leaves the new one alone.
    await DeltaQueue(ops_app.app[REDIS]).push(Standing.from_player(erased_doc, now_ms()))
    await drained()
    assert await operator.board("region:na") == [pid] and await operator.board("guild:owls") == []
    assert (await operator.ok("GET", "/api/v1/leaderboards/global"))["entries"][0]["score"] == 10
    # Created after the erasure: a rebuild keeps it.
    created = mongo.players.find_one({"_id": pid})["created_ms"]
    assert created > mongo.erasures.find_one({"_id": pid})["erased_ms"]
    await ops_app.app[REBUILD]()
    await drained()
    assert await operator.board("global") == [pid]
    assert (await operator.ok("GET", f"/api/v1/players/{pid}"))["score"]["total"] == 10


@pytest.fixture
def own_redis():
    proc = RedisProcess()
    yield proc
    proc.stop()


async def test_an_erased_player_stays_gone_after_redis_restarts_empty(start_app, op_settings, own_redis, http):
    app = await start_app(op_settings, redis_url=own_redis.url)
    operator = Operator(http, app.url)
    sessions, clients = [], []
    for _ in range(2):
        async with http.post(f"{app.url}/api/v1/sessions",
                             json={"player_id": f"r{len(sessions)}-{now_ms()}", "name": "n", "region": "eu"}) as resp:
            assert resp.status == 201
            sessions.append(await resp.json())
        clients.append(await open_client(app.url, sessions[-1]["token"]))
    try:
        for client in clients:
            assert (await client.play())[1]["ok"]
        keep, gone = (s["player"]["player_id"] for s in sessions)

        async def both_on() -> None:
            assert sorted(await operator.board("global")) == sorted([keep, gone])

        await eventually(both_on)
        await operator.ok("DELETE", f"/api/v1/admin/players/{gone}")
        own_redis.stop()
        own_redis.start()  # empty: no boards, no marks; the lease holder rebuilds from MongoDB

        async def rebuilt() -> None:
            try:
                assert await operator.board("global") == [keep]
            except aiohttp.ClientError as exc:
                raise AssertionError(exc) from exc

        await eventually(rebuilt, timeout=15)
        await asyncio.sleep(3 * op_settings.flush_ms / 1000)
        assert await operator.board("global") == [keep]
        status, _ = await operator.call("GET", f"/api/v1/players/{gone}")
        assert status == 404
    finally:
        for client in clients:
            if client.sio.connected:
                await client.sio.disconnect()
