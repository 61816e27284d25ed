"""The page's v1.1 boards in headless Chromium (tests/static/boards.mjs): on the Watch tab the
countdowns to the daily and weekly resets tick, and a spectator steps back through ended days
(final, read-only, labelled as ended) until BOARD_HISTORY_DAYS ends it with not_found, then forward
to the live board; on the Tournaments tab a player lists a tournament, joins it, watches its board
while its own credit arrives live with the countdown to the end, and sees the final board after it.

The server runs on the real clock (create_app takes none): the ended day is put on the boards
through BoardStore as a standing of yesterday, the way the flusher would have put it then.
Screenshots land in test-artifacts/boards/<scenario>/."""

from __future__ import annotations

import re
import shutil
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from redis.asyncio import Redis

from app.clock import iso, now_ms
from app.config import Secret, Settings
from app.leaderboard.boards import BoardStore
from app.leaderboard.periods import WEEKLY, day_key, week_key
from tests.static.test_browser import chromium  # noqa: F401  (the fixture)
from tests.support import make_standing, run_node_json

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).resolve().parent / "boards.mjs"
ARTIFACTS = ROOT / "test-artifacts" / "boards"
NODE_TIMEOUT_S = 120
DAY = 86_400_000
HISTORY_DAYS = 2
API_KEY = "board-pages-key-0123456789"
CLOCK = re.compile(r"^Resets in (\d+ d )?\d\d:\d\d:\d\d$")


@pytest.fixture
async def app_url(start_app, settings: Settings) -> str:
    """Ended boards kept 2 days (so that stepping back reaches not_found), and an API key for tournaments."""
    return (await start_app(replace(settings, board_history_days=HISTORY_DAYS, api_key=Secret(API_KEY)))).url


async def run_page(node: str, chromium: str, scenario: str, **config) -> dict:  # noqa: F811
    screenshots = ARTIFACTS / scenario
    shutil.rmtree(screenshots, ignore_errors=True)
    r = await run_node_json(node, SCRIPT, {"chromium": chromium, "screenshots": str(screenshots),
                                           "scenario": scenario, **config},
                            NODE_TIMEOUT_S, hint=f"screenshots: {screenshots}\n")
    assert r["console_errors"] == [], r["console_errors"]
    assert r["page_errors"] == [], r["page_errors"]
    assert r["failed_requests"] == [], r["failed_requests"]
    return r


async def test_countdowns_tick_and_a_spectator_steps_back_through_ended_days(
        node, chromium, app_url, settings, player, drained):  # noqa: F811
    now = now_ms()
    today = now // DAY * DAY
    yesterday = today - DAY
    # Yesterday's board of region eu, as the flusher left it at the end of the day.
    client = Redis.from_url(settings.redis_url)
    try:
        boards = BoardStore(client)
        for i, (pid, name, points) in enumerate([("old-ann", "Old Ann", 30), ("old-bob", "Old Bob", 20),
                                                 ("old-cid", "Old Cid", 20)]):
            await boards.apply(make_standing(pid, name, "eu", None, 1, points, points, points, yesterday + 1000 + i))
    finally:
        await client.aclose()
    # And one player today, on the live board.
    _, live = await player(region="eu", name="Live Lu")
    _, ack = await live.play("quick")
    assert ack["ok"], ack
    await drained()

    days = [day_key(yesterday), day_key(yesterday - DAY), day_key(yesterday - 2 * DAY)]
    r = await run_page(node, chromium, "history", url=app_url, days=days)

    # The countdown to midnight UTC ticks every second; the week's is shown beside it.
    first, second = r["daily_clock"]
    assert CLOCK.match(first) and CLOCK.match(second) and first != second, r["daily_clock"]
    assert CLOCK.match(r["weekly_clock"]), r["weekly_clock"]
    assert [cells[1] for cells in r["live_daily"]] == ["Live Lu"], r["live_daily"]

    # Yesterday: its final board, labelled as ended.
    first_day, second_day, gone = r["days"]
    assert first_day["title"] == f"{days[0]} (ended)" and first_day["ended"] == days[0], first_day
    assert first_day["rows"] == [["1", "Old Ann", "30"], ["2", "Old Bob", "20"], ["3", "Old Cid", "20"]], first_day
    assert "has ended: its board is final, 3 players" in first_day["note"], first_day
    assert first_day["clock"] == "Final: this day has ended.", first_day
    assert not first_day["previous_disabled"]
    # The day before: ended with nobody on it.
    assert second_day["title"] == f"{days[1]} (ended)" and second_day["rows"] == [["No scores that day."]], second_day
    # The day before that ended more than BOARD_HISTORY_DAYS ago: not_found ends the stepping,
    # said in words, with the last readable board still on show.
    assert "no longer kept" in gone["note"] and "BOARD_HISTORY_DAYS" in gone["note"] and days[1] in gone["note"], gone
    assert gone["title"] == f"{days[1]} (ended)" and gone["previous_disabled"], gone

    # Forward again: yesterday, then the live board, which the live deltas keep.
    assert r["forward"][0]["title"] == f"{days[0]} (ended)" and r["forward"][0]["rows"][0] == ["1", "Old Ann", "30"]
    assert r["forward"][1]["title"] == "Today" and not r["forward"][1]["live_button"], r["forward"]
    assert [cells[1] for cells in r["forward"][1]["rows"]] == ["Live Lu"], r["forward"]
    assert CLOCK.match(r["back_live_clock"]), r["back_live_clock"]

    # A week back: last ISO week while it ended within BOARD_HISTORY_DAYS (on a Monday or a
    # Tuesday), else not kept any more.
    last_week = week_key(now - 7 * DAY)
    last_week_end = WEEKLY.end(now) - 7 * DAY
    if now < last_week_end + HISTORY_DAYS * DAY:
        assert r["week"]["title"] == f"{last_week} (ended)", r["week"]
        if week_key(yesterday) == last_week:
            assert [cells[1] for cells in r["week"]["rows"]] == ["Old Ann", "Old Bob", "Old Cid"], r["week"]
    else:
        assert r["week"]["title"] == "This week" and "no longer kept" in r["week"]["note"], r["week"]


async def test_tournaments_tab_lists_joins_and_watches_a_board_live_to_its_final(
        node, chromium, app_url, http):  # noqa: F811
    now = now_ms()
    tid, later = f"cup{uuid.uuid4().hex[:8]}", f"later{uuid.uuid4().hex[:8]}"
    end_s = 30
    for ident, body in (
        (tid, {"title": "Browser cup", "start_at": iso(now - 60_000), "end_at": iso(now + end_s * 1000)}),
        (later, {"title": "Later cup", "start_at": iso(now + 3_600_000), "end_at": iso(now + 7_200_000)}),
    ):
        async with http.put(f"{app_url}/api/v1/tournaments/{ident}", json=body,
                            headers={"Authorization": f"Bearer {API_KEY}"}) as resp:
            assert resp.status == 200, await resp.text()

    player_id = f"web{uuid.uuid4().hex[:10]}"
    r = await run_page(node, chromium, "tournament", url=app_url, tournament=tid, upcoming=later,
                       player_id=player_id, name="Cup Ann", region="eu", action="quick",
                       end_wait_ms=(end_s + 15) * 1000)

    # Listed with its state and countdowns; joined.
    assert r["listed"]["running"]["state"] == "running" and "Browser cup" in r["listed"]["running"]["text"]
    assert r["listed"]["upcoming"]["state"] == "upcoming"
    assert re.match(r"^starts in 0[01]:\d\d:\d\d$", r["listed"]["upcoming"]["countdown"]), r["listed"]
    assert "Joined" in r["joined"] and "1 player" in r["joined"], r["joined"]

    # Its board, watched live with the countdown to its end ticking.
    before = r["board_before"]
    assert before["title"] == "Browser cup" and before["rows"] == [["No scores yet."]], before
    first, second = before["countdown"]
    assert re.match(r"^ends in 00:00:\d\d$", first) and re.match(r"^ends in 00:00:\d\d$", second) and first != second
    # The credit counted toward it, and arrived on the watched board from the room's delta.
    assert r["ack"]["ok"] and r["ack"].get("tournaments") == {tid: 10}, r["ack"]
    live = r["board_live"]
    assert live["rows"] == [["1", "Cup Ann", "10"]] and live["phase"] == "live", live
    assert live["note"].startswith("Live:") and live["countdown"].startswith("ends in "), live

    # After the end: the final board, read from the server; no Join any more.
    final = r["board_final"]
    assert final["rows"] == [["1", "Cup Ann", "10"]], final
    assert final["note"] == "Final board: the tournament has ended (1 player).", final
    assert final["countdown"].startswith("ended ") and final["item_state"] == "ended", final
    assert final["buttons"] == ["Final board"], final
