"""watch / unwatch over a real Socket.IO client: snapshots, limits, guild membership, deltas."""

from __future__ import annotations

import asyncio


def code(reply: dict) -> str:
    assert reply["ok"] is False, reply
    return reply["error"]["code"]


async def test_spectator_watches_region_and_gets_snapshot_and_delta(connect, player):
    spectator = await connect()
    reply = await spectator.call("watch", {"room": "region:eu"})
    assert reply["ok"] and reply["room"] == "region:eu"
    snapshot = reply["snapshot"]
    assert snapshot == {"room": "region:eu", "seq": snapshot["seq"], "boards": {"all": [], "daily": [], "weekly": []},
                        "resets_at": snapshot["resets_at"]}
    # The next UTC midnight, and the next Monday's.
    daily, weekly = snapshot["resets_at"]["daily"], snapshot["resets_at"]["weekly"]
    assert daily.endswith("T00:00:00.000Z") and weekly.endswith("T00:00:00.000Z") and daily <= weekly
    session, client = await player(region="eu", name="Eve")
    await client.play("quick")
    deltas = await spectator.wait_event("leaderboard:delta")
    delta = deltas[0]
    assert delta["room"] == "region:eu" and delta["seq"] == snapshot["seq"] + 1
    assert delta["at"].endswith("Z")
    row = {"rank": 1, "player_id": session["player"]["player_id"], "name": "Eve", "score": 10}
    assert delta["boards"]["all"][0] == row
    again = await spectator.call("watch", {"room": "region:eu"})
    assert again["snapshot"]["boards"]["all"] == [row] and again["snapshot"]["seq"] == delta["seq"]


async def test_players_join_their_own_rooms(player):
    session, client = await player(region="apac", guild="owls")
    await client.play("quick")
    rooms = {d["room"] for d in await client.wait_event("leaderboard:delta", 2)}
    assert rooms == {"region:apac", "guild:owls"}


async def test_guild_room_only_for_members(connect, player):
    spectator = await connect()
    assert code(await spectator.call("watch", {"room": "guild:owls"})) == "forbidden"
    _, outsider = await player(guild="cats")
    assert code(await outsider.call("watch", {"room": "guild:owls"})) == "forbidden"
    _, member = await player(guild="owls")
    assert (await member.call("watch", {"room": "guild:owls"}))["ok"]


async def test_room_names_are_checked(connect):
    spectator = await connect()
    for room in ("region:mars", "region:", "guild:", "guild:bad name", "player:x", "global", "lobby"):
        assert code(await spectator.call("watch", {"room": room})) == "invalid_payload", room
        assert code(await spectator.call("unwatch", {"room": room})) == "invalid_payload", room


async def test_at_most_eight_rooms_and_rewatch_does_not_count(connect, settings, start_app):
    regions = tuple(f"r{i}" for i in range(10))
    app = await start_app(settings, regions=regions)
    spectator = await connect(url=app.url)
    for region in regions[:8]:
        assert (await spectator.call("watch", {"room": f"region:{region}"}))["ok"]
    assert (await spectator.call("watch", {"room": "region:r0"}))["ok"]
    assert code(await spectator.call("watch", {"room": "region:r8"})) == "too_many_rooms"
    assert (await spectator.call("unwatch", {"room": "region:r0"})) == {"ok": True}
    assert (await spectator.call("watch", {"room": "region:r8"}))["ok"]


async def test_own_rooms_do_not_count_and_are_kept(player):
    session, client = await player(region="eu", guild="owls")
    assert (await client.call("watch", {"room": "region:eu"}))["ok"]
    assert (await client.call("watch", {"room": "guild:owls"}))["ok"]
    for region in ("na", "apac", "sa", "oce"):
        assert (await client.call("watch", {"room": f"region:{region}"}))["ok"]
    assert (await client.call("unwatch", {"room": "region:eu"})) == {"ok": True}
    assert (await client.call("unwatch", {"room": "region:oce"})) == {"ok": True}
    assert (await client.call("unwatch", {"room": "region:oce"})) == {"ok": True}
    await client.play("quick")
    rooms = {d["room"] for d in await client.wait_event("leaderboard:delta", 2)}
    assert rooms == {"region:eu", "guild:owls"}


async def test_unwatched_room_sends_no_more_deltas(connect, player):
    spectator = await connect()
    assert (await spectator.call("watch", {"room": "region:na"}))["ok"]
    assert (await spectator.call("unwatch", {"room": "region:na"})) == {"ok": True}
    _, client = await player(region="na")
    await client.play("quick")
    await client.wait_event("leaderboard:delta")
    await asyncio.sleep(0.3)
    assert "leaderboard:delta" not in spectator.events
