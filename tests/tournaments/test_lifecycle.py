"""A tournament's whole life on real servers (PROTOCOL.md 10, issue 14): created, joined, full,
closed to a region, credits counted only inside its window (a real window of a few seconds),
live deltas in its room, the final board kept after the end, and `tournament_1..3` awarded
exactly once, also when the flush lease holder is killed (kill -9) as the tournament ends. A
JS socket.io-client entrant joins and watches the board; a tournament problem never costs a
credit."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import redis.asyncio as aioredis
from pymongo import AsyncMongoClient

from app.clock import now_ms
from app.handlers.http import SERVICES
from app.leaderboard import keys
from app.tournaments.store import TournamentStore
from tests.support import OPERATOR_KEY, Client, Operator, create_session, eventually, open_client, run_node_json
from tests.tournaments.support import body

ENTRANT_JS = Path(__file__).resolve().parent / "js" / "entrant.mjs"
# settle_ms = 2 x STORE_TIMEOUT_MS + 2 x LEADERBOARD_FLUSH_MS: short, for awards a few seconds after the end.
STORE_TIMEOUT_MS = 1000


async def sleep_until(ms: int) -> None:
    await asyncio.sleep(max(0.0, (ms - now_ms()) / 1000))


def code(reply: dict) -> str | None:
    return None if reply.get("ok") else reply["error"]["code"]


async def board(http, url: str, tid: str) -> tuple[int, dict]:
    async with http.get(f"{url}/api/v1/leaderboards/tournament:{tid}") as resp:
        return resp.status, await resp.json()


def unlocked(client: Client, achievement: str) -> list[dict]:
    return [e for e in client.events.get("achievement:unlocked", []) if e["id"] == achievement]


async def test_a_tournament_from_creation_to_awards_on_two_instances(
        start_app, op_settings, http, node, connect, new_session, mongo_proc) -> None:
    settings = replace(op_settings, store_timeout_ms=STORE_TIMEOUT_MS)
    one, two = await start_app(settings), await start_app(settings)
    op = Operator(http, one.url)
    t0 = now_ms()
    start, end = t0 + 3500, t0 + 8500
    status, created = await op.put("cup", body(start, end, actions=["quick"], regions=["eu"], max_players=2))
    assert status == 200 and created["state"] == "upcoming", created

    ann, bob, nadia, dan = [await new_session(region=r, url=one.url) for r in ("eu", "eu", "na", "eu")]
    # The JS entrant (ann) joins and watches the room on instance two until after the end.
    js = asyncio.create_task(run_node_json(node, ENTRANT_JS, {"url": two.url, "token": ann["token"],
                                                              "tournament": "cup", "watch_ms": end - now_ms() + 2500},
                                           timeout_s=40))

    async def ann_joined() -> None:
        assert (await op.call("GET", "/api/v1/tournaments/cup", key=False))[1]["players"] == 1

    await eventually(ann_joined)
    ann_c = await connect(ann["token"], url=one.url)
    bob_c = await connect(bob["token"], url=two.url)
    nadia_c, dan_c = await connect(nadia["token"], url=one.url), await connect(dan["token"], url=two.url)
    assert (await bob_c.call("tournament:join", {"tournament": "cup"}))["tournament"]["players"] == 2
    assert code(await nadia_c.call("tournament:join", {"tournament": "cup"})) == "tournament_closed"
    assert code(await dan_c.call("tournament:join", {"tournament": "cup"})) == "tournament_full"

    # Unknown tournaments: not_found everywhere; a tournament board has `all` only.
    spectator = await connect(url=two.url)
    assert code(await spectator.call("watch", {"room": "tournament:nope"})) == "not_found"
    assert code(await spectator.call("leaderboard:get", {"board": "tournament:nope"})) == "not_found"
    assert (await board(http, one.url, "nope"))[0] == 404
    assert code(await spectator.call("leaderboard:get", {"board": "tournament:cup", "period": "daily"})) \
        == "invalid_payload"
    watched = await spectator.call("watch", {"room": "tournament:cup"})
    assert watched["ok"] and watched["snapshot"]["boards"] == {"all": []}, watched

    # Before the start: credited, not counted.
    _, early = await ann_c.play("quick")
    assert early["ok"] and "tournaments" not in early and early["score"]["total"] == 10

    await sleep_until(start + 300)
    _, first = await ann_c.play("quick")
    _, second = await ann_c.play("quick")
    _, bobs = await bob_c.play("quick")
    _, other_action = await ann_c.play("big")
    _, not_entrant = await dan_c.play("quick")
    assert first["tournaments"] == {"cup": 10} and second["tournaments"] == {"cup": 20}
    assert bobs["tournaments"] == {"cup": 10}
    assert "tournaments" not in other_action and other_action["score"]["total"] == 630
    assert "tournaments" not in not_entrant and not_entrant["ok"]

    async def delta_with_both() -> dict:
        rows = [row for d in spectator.events.get("leaderboard:delta", []) if d["room"] == "tournament:cup"
                for row in d["boards"]["all"]]
        assert {row["player_id"] for row in rows} == {ann["player"]["player_id"], bob["player"]["player_id"]}
        return spectator.events["leaderboard:delta"][-1]

    delta = await eventually(delta_with_both)
    assert set(delta["boards"]) == {"all"}  # no daily or weekly boards in a tournament's room

    await sleep_until(end + 50)
    _, late = await ann_c.play("quick")
    assert late["ok"] and "tournaments" not in late

    expected = [(ann["player"]["player_id"], 20), (bob["player"]["player_id"], 10)]
    for url in (one.url, two.url):
        status, final = await board(http, url, "cup")
        assert status == 200 and final["total_players"] == 2 and final["resets_at"] is None
        assert [(e["player_id"], e["score"]) for e in final["entries"]] == expected
    got = await spectator.call("leaderboard:get", {"board": "tournament:cup", "around": bob["player"]["player_id"]})
    assert [e["rank"] for e in got["entries"]] == [1, 2]

    # Awards: once, to the first two (nobody third), announced on the winner's connections.
    async def awarded() -> None:
        assert len(unlocked(ann_c, "tournament_1")) == 1 and len(unlocked(bob_c, "tournament_2")) == 1

    await eventually(awarded, timeout=15)
    await asyncio.sleep(2.5)  # several more award rounds on both instances: nothing more
    assert len(unlocked(ann_c, "tournament_1")) == 1 and len(unlocked(bob_c, "tournament_2")) == 1
    assert not unlocked(ann_c, "tournament_2") and not unlocked(dan_c, "tournament_3")
    async with http.get(f"{two.url}/api/v1/players/{ann['player']['player_id']}") as resp:
        assert "tournament_1" in {a["id"] for a in (await resp.json())["achievements"]}

    seen = await js
    assert seen["join"]["ok"] and seen["join_again"]["ok"], seen
    assert seen["snapshot"]["room"] == "tournament:cup" and seen["gaps"] == 0
    assert [(r["player_id"], r["score"]) for r in seen["board"]["all"]] == expected
    assert all(set(d["boards"]) == {"all"} for d in seen["deltas"])


async def test_the_awards_survive_the_lease_holder_killed_at_the_end(instances, http, settings) -> None:
    env = {"API_KEY": OPERATOR_KEY, "STORE_TIMEOUT_MS": str(STORE_TIMEOUT_MS)}
    a, b = await instances(**env), await instances(**env)
    by_pid = {a.proc.pid: a, b.proc.pid: b}
    t0 = now_ms()
    start, end = t0 + 3000, t0 + 6000
    status, _ = await Operator(http, a.url).put("final", body(start, end))
    assert status == 200
    sessions = [await create_session(http, url) for url in (a.url, b.url, a.url)]
    clients = {}
    try:
        for session, url in zip(sessions, (a.url, b.url, a.url), strict=True):
            # Each player also on the other instance: whichever survives announces.
            other = b.url if url == a.url else a.url
            pair = [await open_client(url, session["token"]), await open_client(other, session["token"])]
            clients[session["player"]["player_id"]] = pair
            assert (await pair[0].call("tournament:join", {"tournament": "final"}))["ok"]
        await sleep_until(start + 300)
        order = [s["player"]["player_id"] for s in sessions]
        for plays, pid in zip((3, 2, 1), order, strict=True):
            for _ in range(plays):
                _, ack = await clients[pid][0].play("quick")
                assert "final" in ack["tournaments"], ack

        # Kill -9 whoever holds the flush lease as the tournament ends (before any award).
        client = aioredis.Redis.from_url(settings.redis_url)
        try:
            await sleep_until(end)
            held = await client.get(keys.LEASE_KEY)
            assert isinstance(held, bytes), "nobody holds the flush lease"
            holder = held.decode()
        finally:
            await client.aclose()
        victim = by_pid[int(holder.split(":")[-2])]
        victim.kill()
        survivor = b if victim is a else a

        async def final_board() -> list:
            status, got = await board(http, survivor.url, "final")
            assert status == 200
            assert [(e["player_id"], e["score"]) for e in got["entries"]] == list(zip(order, (30, 20, 10),
                                                                                      strict=True))
            return got["entries"]

        await eventually(final_board, timeout=15)

        def seen(place: int) -> list[dict]:
            pid = order[place - 1]
            return [e for c in clients[pid] for e in unlocked(c, f"tournament_{place}")]

        async def awarded() -> None:
            assert all(len(seen(place)) == 1 for place in (1, 2, 3))

        killed_at = time.monotonic()
        await eventually(awarded, timeout=20)
        await asyncio.sleep(2.0)
        assert all(len(seen(place)) == 1 for place in (1, 2, 3)), "an award was announced twice"
        mongo: AsyncMongoClient = AsyncMongoClient(settings.mongodb_url)
        try:
            db = mongo[settings.mongodb_db]
            stored = await db["tournaments"].find_one({"_id": "final"})
            assert stored is not None and stored["awarded"] is True and stored["winners"] == order
            for place, pid in enumerate(order, start=1):
                assert await db["achievements"].count_documents({"player_id": pid}) >= 1
                assert await db["achievements"].count_documents(
                    {"player_id": pid, "achievement": {"$regex": "^tournament_"}}) == 1, place
        finally:
            await mongo.close()
        assert time.monotonic() - killed_at < 20
    finally:
        for pair in clients.values():
            for c in pair:
                if c.sio.connected:
                    await c.sio.disconnect()


async def test_a_tournament_problem_never_costs_the_credit(start_app, op_settings, player, mongo_proc) -> None:
    app = await start_app(op_settings)
    op_url = app.url
    t0 = now_ms()
    service = app.app[SERVICES].tournaments
    await service.put("open", {"title": "Open", "start_ms": t0 - 1000, "end_ms": t0 + 60_000, "actions": None,
                               "regions": None, "max_players": None})
    _, ann = await player(url=op_url)
    assert (await ann.call("tournament:join", {"tournament": "open"}))["ok"]
    _, counted = await ann.play("quick")
    assert counted["tournaments"] == {"open": 10}
    # The tournament store goes away (a MongoDB nobody answers on): the credit still goes through.
    dead: AsyncMongoClient = AsyncMongoClient("mongodb://127.0.0.1:9", timeoutMS=300, serverSelectionTimeoutMS=300)
    try:
        service._store = TournamentStore(dead["gone"])  # noqa: SLF001 - the test breaks this one store only
        _, ack = await ann.play("quick")
        assert ack["ok"] and ack["score"]["total"] == 20 and "tournaments" not in ack, ack
    finally:
        await dead.close()
