"""The browser client (static/) in headless Chromium: a spectator page watches region:eu while a
player page gets a guest session, plays "quick" (challenge, proof of work in a Web Worker,
completion) and sees its ack, score, rank and achievement toast; the spectator's boards update
live from the delta. Once over websocket (the default: polling, then the upgrade) and once with
?transport=polling. No console errors, no request leaves the server's origin.

Screenshots land in test-artifacts/browser/<transport>/ for a person to look at.
The browser side is tests/static/browser.mjs (playwright-core with Debian's chromium)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support import run_node_json

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).resolve().parent / "browser.mjs"
ARTIFACTS = ROOT / "test-artifacts" / "browser"
NODE_TIMEOUT_S = 120


@pytest.fixture(scope="session")
def chromium() -> str:
    if not (ROOT / "node_modules" / "playwright-core" / "package.json").is_file():
        pytest.fail("node_modules/playwright-core is missing: run `make setup` (npm ci)")
    binary = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None)
    if not binary:
        pytest.fail("chromium is not installed: the browser tests need Debian's chromium; run `make setup`")
    return binary


async def run_browser(node: str, **config) -> dict:
    """Run tests/static/browser.mjs; return the one JSON object it printed."""
    return await run_node_json(node, SCRIPT, config, NODE_TIMEOUT_S, hint=f"screenshots: {config['screenshots']}\n")


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_player_plays_and_spectator_watches(node, chromium, app_url, player, drained, transport):
    # Two players already on the region's boards with 5 points each: the browser player's 10 points
    # will move them down a rank, which the spectator page animates.
    for seed in ("Seed Bo", "Seed Cy"):
        _, client = await player(region="eu", name=seed)
        _, ack = await client.play("brief")
        assert ack["ok"] and ack["points"] == 5, ack
    await drained()

    player_id = f"web{uuid.uuid4().hex[:10]}"
    name = "Browser Ann"
    screenshots = ARTIFACTS / transport
    shutil.rmtree(screenshots, ignore_errors=True)
    r = await run_browser(
        node, url=app_url, chromium=chromium, screenshots=str(screenshots),
        transport="polling" if transport == "polling" else "default",
        player_id=player_id, name=name, region="eu", action="quick",
    )

    # Nothing went wrong in either page, and nothing left the server's origin.
    assert r["console_errors"] == [], r["console_errors"]
    assert r["page_errors"] == [], r["page_errors"]
    assert r["failed_requests"] == [], r["failed_requests"]
    assert r["http_errors"] == [], r["http_errors"]
    origin = urlsplit(app_url)
    assert r["requests"], "no request was recorded"
    for url in r["requests"] + r["websockets"]:
        parts = urlsplit(url)
        assert parts.scheme in ("http", "ws") and parts.netloc == origin.netloc, f"request off the origin: {url}"
    assert f"{app_url}/static/vendor/socket.io.min.js" in r["requests"]
    assert f"{app_url}/static/pow-worker.js" in r["requests"]
    assert any("/api/v1/actions" in url for url in r["requests"])

    # The transport: websocket after the upgrade by default; polling only, and no websocket, when forced.
    expected = "polling" if transport == "polling" else "websocket"
    for label, indicator in r["indicators"].items():
        assert indicator["engine"] == expected, (label, indicator)
        assert indicator["transport"] == f"Transport: {expected}", (label, indicator)
        assert indicator["connection"] == "Connected", (label, indicator)
    if transport == "polling":
        assert r["websockets"] == []
        assert all("transport=polling" in url for url in r["requests"] if "/socket.io/" in url)
    else:
        assert r["websockets"] and all("/socket.io/" in url and "transport=websocket" in url for url in r["websockets"])

    # The player: session, the catalogue's "quick" challenge, the ack, score and rank, the toast.
    assert f"Playing as {name} ({player_id}) in region eu" in r["session_info"]
    # Its guest key kept beside the player id, and sent again by the next session of this browser.
    assert r["guest_key_length"] >= 32
    assert f"Playing as {name} ({player_id}) in region eu" in r["returning_session_info"]
    assert r["challenge"] == {"action": "quick", "difficulty": "4 zero bits"}
    assert r["pow_status"].startswith("Proof found: ")
    ack = r["ack"]
    assert ack == {
        "ok": True, "action_id": ack["action_id"], "points": 10, "duplicate": False,
        "score": {"total": 10, "daily": 10, "weekly": 10}, "achievements": ack["achievements"],
    }
    assert "first_action" in ack["achievements"]  # and top_10, top_1: the first player of the test's database
    assert r["ack_summary"] == "+10 points. Total score 10."
    facts = r["player_facts"]
    assert facts == {
        "total": "10", "daily": "10", "weekly": "10", "rank_global": "#1", "rank_region": "#1",
        "achievements": facts["achievements"],
    }
    assert "First steps" in facts["achievements"].split(", ")
    assert any(t.startswith("Achievement unlocked: First steps") for t in r["toasts"]), r["toasts"]

    # The spectator: the player's row in all three boards, from the live delta, marked as new,
    # and the seeded players marked as moved down.
    for period, row in r["spectator_rows"].items():
        assert row["cells"][0] == "1" and row["cells"][1].startswith(name) and row["cells"][2] == "10", (period, row)
        assert "row-new" in row["classes"], (period, row)
    board = [(row["cells"], row["classes"]) for row in r["spectator_board_all"]]
    assert board == [
        (["1", f"{name} ★", "10"], "row-new"),
        (["2", "Seed Bo ▼", "5"], "row-down"),
        (["3", "Seed Cy ▼", "5"], "row-down"),
    ], board
    assert r["watch_seq"].startswith("seq ")

    # Screenshots for a person, and a phone-sized layout that does not scroll sideways.
    for shot in ("player.png", "spectator.png", "player-mobile.png", "spectator-mobile.png"):
        assert (screenshots / shot).stat().st_size > 0, shot
    assert r["mobile_overflow"] == {"spectator": False, "player": False}
