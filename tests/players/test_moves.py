"""Region and guild moves (PROTOCOL.md 3, v1.1): a session with a new region or guild moves the
player's standings, every period, off the old boards onto the new ones at once; it is never on two
region or two guild boards, and watchers of both rooms see it in their next deltas."""

from __future__ import annotations

from app.leaderboard.periods import STANDARD
from tests.support import Client, eventually

PERIODS = STANDARD.names


class RoomView:
    """What a watcher holds for one room: the `watch` snapshot, then every later delta applied as
    PROTOCOL.md section 6 says (replace the row at each rank, clear a period on reset)."""

    def __init__(self, client: Client, room: str, snapshot: dict, top_n: int = 10) -> None:
        self.client, self.room, self.top_n = client, room, top_n
        self.seq = snapshot["seq"]
        self.boards = {p: {row["rank"]: row for row in snapshot["boards"][p]} for p in PERIODS}
        self._seen = 0

    def catch_up(self) -> None:
        deltas = self.client.events.get("leaderboard:delta", [])
        for delta in sorted((d for d in deltas[self._seen:] if d["room"] == self.room), key=lambda d: d["seq"]):
            if delta["seq"] <= self.seq:
                continue
            assert delta["seq"] == self.seq + 1, f"{self.room}: a gap in seq ({self.seq} -> {delta['seq']})"
            for period in delta.get("reset") or []:
                self.boards[period] = {}
            for period, rows in (delta.get("boards") or {}).items():
                for row in rows:
                    if row.get("player_id") is None:
                        self.boards[period].pop(row["rank"], None)
                    elif row["rank"] <= self.top_n:
                        self.boards[period][row["rank"]] = row
            self.seq = delta["seq"]
        self._seen = len(deltas)

    def ids(self, period: str) -> list[str]:
        self.catch_up()
        return [self.boards[period][rank]["player_id"] for rank in sorted(self.boards[period])]


async def watch(client: Client, room: str) -> RoomView:
    ack = await client.call("watch", {"room": room})
    assert ack["ok"], ack
    return RoomView(client, room, ack["snapshot"])


async def board_ids(http, url: str, board: str, period: str) -> list[str]:
    async with http.get(f"{url}/api/v1/leaderboards/{board}", params={"period": period, "limit": 100}) as resp:
        assert resp.status == 200, await resp.text()
        return [row["player_id"] for row in (await resp.json())["entries"]]


async def test_a_move_takes_the_player_off_the_old_boards_onto_the_new_ones(
        player, connect, http, app_url, drained):
    # Who stays behind on the old boards, each with fewer points than the mover.
    stay, stay_client = await player(region="eu", name="Stays in eu")
    owl, owl_client = await player(region="sa", guild="owls", name="Owl")
    wolf, wolf_client = await player(region="sa", guild="wolves", name="Wolf")
    for client in (stay_client, owl_client):
        _, ack = await client.play("quick")
        assert ack["ok"], ack
    mover, mover_client = await player(region="eu", guild="owls", name="Mover")
    mid = mover["player"]["player_id"]
    _, ack = await mover_client.play("big")
    assert ack["ok"], ack
    await drained()

    # Watchers of every room involved: a spectator for both regions; guild rooms only for members.
    spectator = await connect()
    views = {
        "region:eu": await watch(spectator, "region:eu"),
        "region:na": await watch(spectator, "region:na"),
        "guild:owls": await watch(owl_client, "guild:owls"),
        "guild:wolves": await watch(wolf_client, "guild:wolves"),
    }
    for period in PERIODS:
        assert mid in await board_ids(http, app_url, "region:eu", period)
        assert mid in await board_ids(http, app_url, "guild:owls", period)
        assert views["region:eu"].ids(period)[0] == mid and views["guild:owls"].ids(period)[0] == mid
        assert mid not in views["region:na"].ids(period) and mid not in views["guild:wolves"].ids(period)

    # The same player, back as a guest with its key, in another region and guild.
    body = {"player_id": mid, "name": "Mover", "region": "na", "guild": "wolves", "guest_key": mover["guest_key"]}
    async with http.post(f"{app_url}/api/v1/sessions", json=body) as resp:
        assert resp.status == 201, await resp.text()
        moved = await resp.json()
    assert moved["player"] == {"player_id": mid, "name": "Mover", "region": "na", "guild": "wolves"}

    async def moved_everywhere() -> None:
        for period in PERIODS:
            where = f"period {period}"
            assert mid not in await board_ids(http, app_url, "region:eu", period), where
            assert mid not in await board_ids(http, app_url, "guild:owls", period), where
            assert (await board_ids(http, app_url, "region:na", period))[:1] == [mid], where
            assert (await board_ids(http, app_url, "guild:wolves", period))[:1] == [mid], where
            assert (await board_ids(http, app_url, "global", period)).count(mid) == 1, where
            # Those who stayed move up on the old boards.
            assert (await board_ids(http, app_url, "region:eu", period))[:1] == [stay["player"]["player_id"]], where
            assert (await board_ids(http, app_url, "guild:owls", period))[:1] == [owl["player"]["player_id"]], where
            # And the watchers saw the row leave one room and enter the other.
            assert mid not in views["region:eu"].ids(period), where
            assert mid not in views["guild:owls"].ids(period), where
            assert views["region:na"].ids(period)[:1] == [mid], where
            assert views["guild:wolves"].ids(period)[:1] == [mid], where

    await eventually(moved_everywhere)
    async with http.get(f"{app_url}/api/v1/players/{mid}") as resp:
        profile = await resp.json()
    assert profile["ranks"] == {"global": 1, "region": 1, "guild": 1}

    # Credits after the move, from the old session's still open connection and from a new one,
    # land on the new boards only.
    new_client = await connect(moved["token"])
    for client in (mover_client, new_client):
        _, ack = await client.play("quick")
        assert ack["ok"], ack
    await drained()

    async def still_moved() -> None:
        for period in PERIODS:
            assert mid not in await board_ids(http, app_url, "region:eu", period)
            assert mid not in await board_ids(http, app_url, "guild:owls", period)
            async with http.get(f"{app_url}/api/v1/leaderboards/region:na", params={"period": period}) as resp:
                top = (await resp.json())["entries"][0]
            assert (top["player_id"], top["score"]) == (mid, 620)

    await eventually(still_moved)


async def test_a_move_before_any_credit_puts_nothing_on_the_boards(player, http, app_url, drained):
    mover, _ = await player(region="eu", guild="owls")
    mid = mover["player"]["player_id"]
    body = {"player_id": mid, "name": "Mover", "region": "na", "guild": "wolves", "guest_key": mover["guest_key"]}
    async with http.post(f"{app_url}/api/v1/sessions", json=body) as resp:
        assert resp.status == 201, await resp.text()
    await drained()
    for board in ("global", "region:eu", "region:na", "guild:owls", "guild:wolves"):
        assert mid not in await board_ids(http, app_url, board, "all")
