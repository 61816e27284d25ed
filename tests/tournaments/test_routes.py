"""Tournament routes and tournament:join on real servers (PROTOCOL.md 10): what an operator
and a player see, every refusal with its documented code."""

from __future__ import annotations

import asyncio

import pymongo

from app.clock import now_ms
from tests.support import OPERATOR_AUTH, OPERATOR_KEY, Operator, create_session, open_client
from tests.tournaments.support import HOUR, MINUTE, body

TOURNAMENT_FIELDS = {"tournament_id", "title", "start_at", "end_at", "state", "players", "actions", "regions",
                     "max_players"}


async def test_put_creates_then_reads_show_it(operator: Operator) -> None:
    t0 = now_ms()
    status, created = await operator.put("spring", body(t0 + HOUR, t0 + 2 * HOUR, actions=["quick"],
                                                        regions=["eu", "na"], max_players=100))
    assert status == 200, created
    assert set(created) == TOURNAMENT_FIELDS
    assert created["tournament_id"] == "spring" and created["state"] == "upcoming" and created["players"] == 0
    assert created["actions"] == ["quick"] and created["regions"] == ["eu", "na"] and created["max_players"] == 100
    assert created["start_at"].endswith("Z")
    # Public reads: no key needed.
    status, got = await operator.call("GET", "/api/v1/tournaments/spring", key=False)
    assert status == 200 and got == created
    status, listed = await operator.call("GET", "/api/v1/tournaments", key=False)
    assert status == 200 and listed == {"tournaments": [created]}
    # Every action and region when not given.
    status, open_one = await operator.put("open", body(t0, t0 + HOUR))
    assert status == 200 and open_one["actions"] is None and open_one["regions"] is None
    assert open_one["state"] == "running" and open_one["max_players"] is None


async def test_every_bad_put_has_its_code(operator: Operator) -> None:
    t0 = now_ms()
    good = body(t0 + HOUR, t0 + 2 * HOUR)
    cases = [
        ({**good, "end_at": body(0, t0 + MINUTE)["end_at"]}, "invalid_payload"),  # end before start
        (body(t0 - 2 * HOUR, t0 - HOUR), "invalid_payload"),  # over already
        ({**good, "actions": ["quick", "no_such_action"]}, "invalid_payload"),
        ({**good, "actions": []}, "invalid_payload"),
        ({**good, "regions": ["mars"]}, "invalid_payload"),
        ({**good, "max_players": 0}, "invalid_payload"),
        ({**good, "max_players": 1_000_001}, "invalid_payload"),
        ({**good, "max_players": 5.5}, "invalid_payload"),
        ({**good, "max_players": "5"}, "invalid_payload"),
        ({**good, "start_at": "2026-11-23T10:00:00"}, "invalid_payload"),  # no offset
        ({**good, "start_at": "tomorrow"}, "invalid_payload"),
        ({**good, "start_at": t0}, "invalid_payload"),  # ms, not an ISO time
        ({**good, "title": ""}, "invalid_payload"),
        ({**good, "title": "x" * 101}, "invalid_payload"),
        ({**good, "colour": "red"}, "invalid_payload"),  # unknown field
        ({"title": "no window"}, "invalid_payload"),
        ([good], "invalid_payload"),
    ]
    for payload, code in cases:
        status, answer = await operator.put("cup", payload)
        assert (status, answer["error"]["code"]) == (400, code), payload
    status, answer = await operator.put("bad%20id", good)  # not as player_id
    assert (status, answer["error"]["code"]) == (400, "invalid_payload")
    status, answer = await operator.put("x" * 65, good)
    assert (status, answer["error"]["code"]) == (400, "invalid_payload")
    async with operator.http.put(f"{operator.url}/api/v1/tournaments/cup", data=b"{not json",
                                 headers=OPERATOR_AUTH) as resp:
        assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_payload"
    # Without the key: 401 whatever the body.
    for headers in ({}, {"Authorization": "Bearer wrong-key-0123456789"}):
        status, answer = await operator.put("cup", {"junk": 1}, key=False, headers=headers)
        assert (status, answer["error"]["code"]) == (401, "unauthorized")
    status, answer = await operator.call("GET", "/api/v1/tournaments", key=False)
    assert answer == {"tournaments": []}


async def test_a_change_after_the_start_is_409_conflict(operator: Operator) -> None:
    t0 = now_ms()
    status, _ = await operator.put("live", body(t0 - MINUTE, t0 + HOUR))  # created running: allowed
    assert status == 200
    status, answer = await operator.put("live", body(t0 - MINUTE, t0 + 2 * HOUR))
    assert (status, answer["error"]["code"]) == (409, "conflict")
    status, again = await operator.put("live", body(t0 - MINUTE, t0 + HOUR))  # the same again: no change
    assert status == 200 and again["state"] == "running"


async def test_reads_of_unknown_tournaments_and_bad_queries(operator: Operator) -> None:
    for path in ("/api/v1/tournaments/nope", "/api/v1/tournaments/bad%20id"):
        status, answer = await operator.call("GET", path, key=False)
        assert (status, answer["error"]["code"]) == (404, "not_found"), path
    status, answer = await operator.call("GET", "/api/v1/tournaments?state=running", key=False)
    assert (status, answer["error"]["code"]) == (400, "invalid_payload")
    status, answer = await operator.call("DELETE", "/api/v1/tournaments/nope")
    assert (status, answer["error"]["code"]) == (405, "method_not_allowed")


async def test_public_reads_are_rate_limited_like_leaderboards(start_app, op_settings, http) -> None:
    app = await start_app(op_settings, http_reads_per_ip_per_s=1, http_read_burst=2)
    statuses = []
    for _ in range(4):
        async with http.get(f"{app.url}/api/v1/tournaments") as resp:
            statuses.append(resp.status)
            if resp.status == 429:
                assert "Retry-After" in resp.headers and (await resp.json())["error"]["code"] == "rate_limited"
    assert statuses[:2] == [200, 200] and 429 in statuses[2:]
    async with http.get(f"{app.url}/api/v1/tournaments", headers=OPERATOR_AUTH) as resp:
        assert resp.status == 200  # with the key: not limited


async def test_join_over_the_socket(operator: Operator, player, new_session, connect) -> None:
    t0 = now_ms()
    await operator.put("eu-cup", body(t0 + HOUR, t0 + 2 * HOUR, regions=["eu"]))
    _, ann = await player(region="eu")
    joined = await ann.call("tournament:join", {"tournament": "eu-cup"})
    assert joined["ok"] and set(joined["tournament"]) == TOURNAMENT_FIELDS and joined["tournament"]["players"] == 1
    assert (await ann.call("tournament:join", {"tournament": "eu-cup"}))["tournament"]["players"] == 1
    _, nadia = await player(region="na")
    refused = await nadia.call("tournament:join", {"tournament": "eu-cup"})
    assert refused == {"ok": False, "error": {"code": "tournament_closed", "message": refused["error"]["message"]}}
    assert (await ann.call("tournament:join", {"tournament": "nope"}))["error"]["code"] == "not_found"
    for bad in ({"tournament": "bad id"}, {"tournament": 5}, {}, {"tournament": "eu-cup", "x": 1}, "eu-cup"):
        assert (await ann.call("tournament:join", bad))["error"]["code"] == "invalid_payload", bad
    spectator = await connect()
    assert (await spectator.call("tournament:join", {"tournament": "eu-cup"}))["error"]["code"] == "not_a_player"
    status, got = await operator.call("GET", "/api/v1/tournaments/eu-cup", key=False)
    assert got["players"] == 1


async def test_full_under_concurrent_joins_on_two_instances(instances, http, settings) -> None:
    a = await instances(API_KEY=OPERATOR_KEY)
    b = await instances(API_KEY=OPERATOR_KEY)
    t0 = now_ms()
    status, _ = await Operator(http, a.url).put("small", body(t0 + HOUR, t0 + 2 * HOUR, max_players=3))
    assert status == 200
    urls = [a.url, b.url] * 5
    sessions = [await create_session(http, url) for url in urls]
    clients = [await open_client(url, s["token"]) for url, s in zip(urls, sessions, strict=True)]
    try:
        # Every player joins from its instance at the same moment, and a second time at once.
        answers = await asyncio.gather(*(c.call("tournament:join", {"tournament": "small"})
                                         for c in clients for _ in range(2)))
        ok_players = {i // 2 for i, answer in enumerate(answers) if answer["ok"]}
        assert len(ok_players) == 3, answers
        assert {a["error"]["code"] for a in answers if not a["ok"]} == {"tournament_full"}
        # Rejoining is ok for those in, full for the others.
        for i, client in enumerate(clients):
            again = await client.call("tournament:join", {"tournament": "small"})
            assert again["ok"] == (i in ok_players), again
    finally:
        for client in clients:
            await client.sio.disconnect()
    status, got = await Operator(http, b.url).call("GET", "/api/v1/tournaments/small", key=False)
    assert got["players"] == 3
    mongo: pymongo.MongoClient = pymongo.MongoClient(settings.mongodb_url)
    try:
        entrants = mongo[settings.mongodb_db]["tournament_entrants"].count_documents({"tournament_id": "small"})
    finally:
        mongo.close()
    assert entrants == 3


async def test_the_ended_tournament_closes_joins(operator: Operator, player) -> None:
    t0 = now_ms()
    await operator.put("brief", body(t0 - MINUTE, t0 + 300))
    _, ann = await player()
    assert (await ann.call("tournament:join", {"tournament": "brief"}))["ok"]
    await asyncio.sleep(0.4)  # the window's end passes on the server's clock
    _, bob = await player()
    assert (await bob.call("tournament:join", {"tournament": "brief"}))["error"]["code"] == "tournament_closed"
    status, listed = await operator.call("GET", "/api/v1/tournaments", key=False)
    assert [(t["tournament_id"], t["state"], t["players"]) for t in listed["tournaments"]] == [("brief", "ended", 1)]
