"""leaderboard:get and the HTTP leaderboard: same answers, ties by who got there first, around."""

from __future__ import annotations


async def http_board(http, url: str, board: str, **query) -> tuple[int, dict]:
    async with http.get(f"{url}/api/v1/leaderboards/{board}", params={k: str(v) for k, v in query.items()}) as resp:
        return resp.status, await resp.json()


async def test_socket_and_http_agree_and_ties_rank_by_first_reached(player, connect, http, app_url, drained):
    first_session, first = await player(region="oce", name="First")
    second_session, second = await player(region="oce", name="Second")
    third_session, third = await player(region="oce", name="Third")
    await second.play("quick")
    await first.play("quick")
    await third.play("quick")
    await third.play("quick")
    await drained()
    spectator = await connect()
    via_socket = await spectator.call("leaderboard:get",
                                      {"board": "region:oce", "period": "all", "limit": 10, "offset": 0})
    status, via_http = await http_board(http, app_url, "region:oce", period="all")
    assert status == 200
    assert via_socket == {"ok": True, **via_http}
    ids = lambda s: s["player"]["player_id"]  # noqa: E731
    assert via_http == {
        "board": "region:oce",
        "period": "all",
        "total_players": 3,
        "entries": [
            {"rank": 1, "player_id": ids(third_session), "name": "Third", "score": 20},
            {"rank": 2, "player_id": ids(second_session), "name": "Second", "score": 10},
            {"rank": 3, "player_id": ids(first_session), "name": "First", "score": 10},
        ],
        "resets_at": None,  # the all-time board never starts over
    }
    for period in ("daily", "weekly"):
        _, board = await http_board(http, app_url, "region:oce", period=period)
        assert board["entries"] == via_http["entries"]
    _, page = await http_board(http, app_url, "region:oce", limit=1, offset=1)
    assert [r["rank"] for r in page["entries"]] == [2] and page["total_players"] == 3


async def test_around_centres_the_player_where_the_board_allows(player, connect, http, app_url, drained):
    sessions = []
    for i in range(7):
        session, client = await player(region="sa", name=f"P{i}")
        for _ in range(7 - i):
            await client.play("quick")
        sessions.append(session["player"]["player_id"])
    await drained()
    spectator = await connect()
    reply = await spectator.call("leaderboard:get", {"board": "region:sa", "around": sessions[3], "limit": 3})
    assert [r["player_id"] for r in reply["entries"]] == sessions[2:5]
    assert reply["entries"][1]["rank"] == 4
    reply = await spectator.call("leaderboard:get", {"board": "global", "around": sessions[0], "limit": 4})
    assert [r["rank"] for r in reply["entries"]] == [1, 2, 3, 4]
    status, body = await http_board(http, app_url, "region:sa", around=sessions[6], limit=4)
    assert status == 200 and [r["rank"] for r in body["entries"]] == [4, 5, 6, 7]


async def test_around_unknown_player_is_not_found(connect, http, app_url):
    spectator = await connect()
    reply = await spectator.call("leaderboard:get", {"board": "global", "around": "nobody"})
    assert reply["ok"] is False and reply["error"]["code"] == "not_found"
    status, body = await http_board(http, app_url, "global", around="nobody")
    assert status == 404 and body["error"]["code"] == "not_found"


async def test_guild_board_readable_by_anyone(player, connect, http, app_url, drained):
    _, member = await player(guild="owls")
    await member.play("quick")
    await drained()
    spectator = await connect()
    reply = await spectator.call("leaderboard:get", {"board": "guild:owls"})
    assert reply["ok"] and reply["entries"][0]["score"] == 10
    status, _ = await http_board(http, app_url, "guild:owls")
    assert status == 200
