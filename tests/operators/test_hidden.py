"""PUT /api/v1/players/<id>/suspension with `hidden`: the player goes off every board at once
(global, region, guild; all-time, daily, weekly), watchers of its rooms see its row leave, it
stays off while it plays on, and it comes back, with every point, when the mark is lifted."""

from __future__ import annotations

from app.server import REBUILD, REDIS
from tests.support import Client, Operator, eventually

PERIODS = ("all", "daily", "weekly")
BOARDS = ("global", "region:eu", "guild:owls")


class RoomModel:
    """A watcher's copy of one room's boards, kept as PROTOCOL.md section 6 says."""

    def __init__(self, snapshot: dict, top_n: int = 10) -> None:
        self.room = snapshot["room"]
        self.seq = snapshot["seq"]
        self.boards = {p: {row["rank"]: row for row in rows} for p, rows in snapshot["boards"].items()}
        self.top_n = top_n

    def catch_up(self, client: Client) -> None:
        for delta in client.events.get("leaderboard:delta", []):
            if delta["room"] != self.room or delta["seq"] <= self.seq:
                continue
            assert delta["seq"] == self.seq + 1, f"gap in {self.room}: {self.seq} -> {delta['seq']}"
            for period in delta.get("reset", []):
                self.boards[period] = {}
            for period, rows in delta["boards"].items():
                for row in rows:
                    self.boards[period][row["rank"]] = row
                self.boards[period] = {r: row for r, row in self.boards[period].items() if r <= self.top_n}
            self.seq = delta["seq"]

    def ids(self, period: str) -> list[str]:
        return [self.boards[period][rank]["player_id"] for rank in sorted(self.boards[period])]


async def on_every_board(operator: Operator) -> dict[tuple[str, str], list[str]]:
    return {(board, period): await operator.board(board, period) for board in BOARDS for period in PERIODS}


async def test_hidden_goes_off_every_board_at_once_and_comes_back_when_lifted(operator: Operator, player, drained):
    ann_s, ann = await player(guild="owls")
    bob_s, bob = await player(guild="owls")
    cid_s, cid = await player()
    a, b, c = (s["player"]["player_id"] for s in (ann_s, bob_s, cid_s))
    for client, times in ((ann, 3), (bob, 5), (cid, 1)):
        for _ in range(times):
            assert (await client.play())[1]["ok"]
    await drained()
    before = await on_every_board(operator)
    for period in PERIODS:
        assert before["global", period] == before["region:eu", period] == [b, a, c]
        assert before["guild:owls", period] == [b, a]
    models = {room: RoomModel((await ann.call("watch", {"room": room}))["snapshot"])
              for room in ("region:eu", "guild:owls")}
    assert models["region:eu"].ids("all") == [b, a, c]

    hidden = await operator.ok("PUT", f"/api/v1/players/{b}/suspension", json={"suspended": False, "hidden": True})
    assert hidden == {"player_id": b, "suspended": False, "hidden": True}
    # At once: no flush waited for.
    after = await on_every_board(operator)
    for period in PERIODS:
        assert after["global", period] == after["region:eu", period] == [a, c]
        assert after["guild:owls", period] == [a]
    profile = await operator.ok("GET", f"/api/v1/players/{b}")
    assert profile["score"]["total"] == 50 and profile["ranks"] == {"global": None, "region": None, "guild": None}

    async def watchers_saw_it_leave() -> None:
        for room, expected in (("region:eu", [a, c]), ("guild:owls", [a])):
            models[room].catch_up(ann)
            assert all(models[room].ids(period) == expected for period in PERIODS), (room, models[room].boards)

    await eventually(watchers_saw_it_leave)

    # Hidden, not suspended: it plays on and is credited, and stays off the boards.
    for _ in range(2):
        assert (await bob.play())[1]["ok"]
    await drained()
    assert await on_every_board(operator) == after

    shown = await operator.ok("PUT", f"/api/v1/players/{b}/suspension", json={"suspended": False})
    assert shown == {"player_id": b, "suspended": False, "hidden": False}
    back = await on_every_board(operator)
    for period in PERIODS:
        assert back["global", period] == back["region:eu", period] == [b, a, c]
        assert back["guild:owls", period] == [b, a]
    assert (await operator.ok("GET", "/api/v1/leaderboards/global?limit=1"))["entries"][0]["score"] == 70

    async def watchers_saw_it_return() -> None:
        for room, expected in (("region:eu", [b, a, c]), ("guild:owls", [b, a])):
            models[room].catch_up(ann)
            assert all(models[room].ids(period) == expected for period in PERIODS), (room, models[room].boards)

    await eventually(watchers_saw_it_return)


async def test_suspended_and_hidden_neither_plays_nor_shows(operator: Operator, player, drained):
    session, client = await player()
    pid = session["player"]["player_id"]
    assert (await client.play())[1]["ok"]
    await drained()
    await operator.ok("PUT", f"/api/v1/players/{pid}/suspension", json={"suspended": True, "hidden": True})
    started = await client.call("action:start", {"action": "quick"})
    assert started["ok"] is False and started["error"]["code"] == "suspended"
    assert await operator.board("global") == []
    # Lifting the suspension alone (hidden defaults to false) shows it again.
    await operator.ok("PUT", f"/api/v1/players/{pid}/suspension", json={"suspended": False})
    assert await operator.board("global") == [pid]


async def test_a_hidden_player_stays_off_after_a_rebuild_and_an_empty_redis(operator: Operator, ops_app, player,
                                                                         drained):
    """The hidden flag on the MongoDB document is the truth: a rebuild marks Redis again."""
    session, client = await player()
    pid = session["player"]["player_id"]
    other_s, other = await player()
    assert (await client.play())[1]["ok"] and (await other.play())[1]["ok"]
    await drained()
    await operator.ok("PUT", f"/api/v1/players/{pid}/suspension", json={"suspended": False, "hidden": True})
    await ops_app.app[REDIS].flushall()  # as after a Redis restart with nothing kept
    await ops_app.app[REBUILD]()
    await drained()
    assert await operator.board("global") == [other_s["player"]["player_id"]]
    assert (await client.play())[1]["ok"]
    await drained()
    assert await operator.board("global") == [other_s["player"]["player_id"]]
