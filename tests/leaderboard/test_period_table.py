"""A period added to the period table (a fixture's "hourly", through Settings.periods) shows up
on boards, in snapshots and deltas, in acks and in profiles, with nothing else changed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.leaderboard.periods import DAILY, WEEKLY, Period

HOUR = 3_600_000



def _hour_key(ms_: int) -> str:
    return datetime.fromtimestamp(ms_ / 1000, tz=UTC).strftime("%Y-%m-%dT%H")


def _hour_start(key: str) -> int:
    return int(datetime.strptime(key, "%Y-%m-%dT%H").replace(tzinfo=UTC).timestamp() * 1000)


def _hour_end(ms_: int) -> int:
    return ms_ // HOUR * HOUR + HOUR


HOURLY = Period("hourly", "h", "hours", "hour", _hour_key, _hour_start, _hour_end, HOUR)


@pytest.fixture
async def app_url(start_app, settings) -> str:
    """Every instance of these tests runs this table (they share the flush lease)."""
    return (await start_app(settings, periods=(DAILY, WEEKLY, HOURLY))).url


async def test_a_period_added_to_the_table_shows_on_boards_deltas_acks_and_profiles(app_url, player, connect,
                                                                                    http) -> None:
    spectator = await connect()
    watched = await spectator.call("watch", {"room": "region:eu"})
    snapshot = watched["snapshot"]
    assert set(snapshot["boards"]) == {"all", "daily", "weekly", "hourly"}
    assert set(snapshot["resets_at"]) == {"daily", "weekly", "hourly"}
    assert snapshot["resets_at"]["hourly"].endswith(":00:00.000Z")
    session, client = await player(region="eu", name="Hana")
    pid = session["player"]["player_id"]
    _, ack = await client.play("quick")
    assert ack["score"] == {"total": 10, "daily": 10, "weekly": 10, "hourly": 10}
    row = {"rank": 1, "player_id": pid, "name": "Hana", "score": 10}
    delta = (await spectator.wait_event("leaderboard:delta"))[0]
    assert delta["boards"] == {"all": [row], "daily": [row], "weekly": [row], "hourly": [row]}
    answer = await spectator.call("leaderboard:get", {"board": "region:eu", "period": "hourly"})
    assert answer["ok"] and answer["entries"] == [row] and answer["resets_at"].endswith(":00:00.000Z"), answer
    async with http.get(f"{app_url}/api/v1/leaderboards/global", params={"period": "hourly"}) as resp:
        assert resp.status == 200 and (await resp.json())["entries"] == [row]
    async with http.get(f"{app_url}/api/v1/players/{pid}") as resp:
        assert (await resp.json())["score"] == {"total": 10, "daily": 10, "weekly": 10, "hourly": 10}
    again = await spectator.call("watch", {"room": "region:eu"})
    assert again["snapshot"]["boards"]["hourly"] == [row]


