"""The operator console (GET /admin, static/admin.html) in headless Chromium, against a real server
with an API key: a player with credited and refused attempts in its audit trail and a suspect were
made through the server (python-socketio clients; the suspect's `suspicion` is written on its
player document as the scorer would, with the scorer off so that it stays as written). The page
asks for the key (a wrong one is refused and asked again), keeps it only in the tab, shows the live
figures as charts, the suspect with its signals, the player's profile and audit trail, suspends,
hides and exports it, and erases it only once the operator has confirmed (dismissed: nothing
deleted; confirmed: the player is gone). No JS error.

Screenshots land in test-artifacts/admin/ (docs/admin-console.png in the README is one of them).
The browser side is tests/static/admin.mjs; the page's logic alone is tests/static/admin.test.mjs."""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from pymongo import AsyncMongoClient

from app.anticheat.proof import solve
from app.clock import now_ms
from app.config import Secret
from tests.static.test_browser import chromium  # noqa: F401 - the shared fixture: Debian's chromium
from tests.support import Client, eventually, open_client, run_node_json

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).resolve().parent / "admin.mjs"
UNIT_TESTS = Path(__file__).resolve().parent / "admin.test.mjs"
ARTIFACTS = ROOT / "test-artifacts" / "admin"
NODE_TIMEOUT_S = 120

API_KEY = "console-key-0123456789abcdef"
WRONG_KEY = "not-the-key-0123456789"
OPERATOR = {"Authorization": f"Bearer {API_KEY}"}

# What the scorer would have written on a bot's player document (app/anticheat/scoring.py's shape).
SIGNALS = {
    "at_min_ms": {"figure": 0.95, "fraction": 0.97, "at_min": 145, "completions": 150, "margin_ms": 150},
    "regular_timing": {"figure": 0.9, "action": "slow", "completions": 150, "cv": 0.0123, "sd_ms": 5.1,
                       "mean_ms": 412.4},
    "sustained_play": {"figure": 0.0, "hours": 0.4, "utilization": 0.93, "since_ms": None, "through_ms": None},
    "proof_invalid": {"figure": 0.0, "count": 0},
    "token_invalid": {"figure": 0.0, "count": 0},
    "too_fast": {"figure": 0.25, "count": 6, "most_in_a_minute": 4},
    "addresses": {"figure": 0.0, "distinct": 1},
}


def wrong_proof(token: str, difficulty: int) -> str:
    """A proof that does not have `difficulty` leading zero bits for `token`."""
    for i in range(1000):
        digest = int.from_bytes(hashlib.sha256(f"{token}:{i}".encode()).digest(), "big")
        if digest >> (256 - difficulty) != 0:
            return str(i)
    raise AssertionError("every proof passed")


async def guest(http: aiohttp.ClientSession, url: str, player_id: str, name: str) -> dict:
    body = {"player_id": player_id, "name": name, "region": "eu"}
    async with http.post(f"{url}/api/v1/sessions", json=body) as resp:
        assert resp.status == 201, await resp.text()
        return await resp.json()


async def audit(http: aiohttp.ClientSession, url: str, player_id: str) -> list[dict]:
    async with http.get(f"{url}/api/v1/admin/players/{player_id}/actions", headers=OPERATOR) as resp:
        assert resp.status == 200, f"the audit route: {resp.status} {await resp.text()}"
        return (await resp.json())["entries"]


async def test_the_console_shows_suspects_and_audit_and_erase_asks_first(node, chromium, settings, start_app,  # noqa: F811
                                                                         http):
    # The scorer is off: the suspect's verdict is the one this test writes, not one it recomputes meanwhile.
    app = await start_app(settings, api_key=Secret(API_KEY), behaviour_scoring=False)
    url = app.url
    ann, bob = f"ann{uuid.uuid4().hex[:8]}", f"bot{uuid.uuid4().hex[:8]}"
    clients: list[Client] = []
    try:
        # Ann: three credited completions, then a wrong proof and one completed too soon (refused).
        session = await guest(http, url, ann, "Audit Ann")
        clients.append(await open_client(url, session["token"]))
        action_ids = []
        for _ in range(3):
            challenge, ack = await clients[0].play("quick")
            assert ack["ok"], ack
            action_ids.append(challenge["action_id"])
        for action in ("quick", "slow"):
            started = await clients[0].call("action:start", {"action": action})
            assert started["ok"], started
            challenge = started["challenge"]
            proof = wrong_proof(challenge["token"], challenge["difficulty"]) if action == "quick" else \
                solve(challenge["token"], challenge["difficulty"])
            ack = await clients[0].call("action:complete", {"token": challenge["token"], "proof": proof})
            assert ack["error"]["code"] == ("proof_invalid" if action == "quick" else "too_fast"), ack
            action_ids.append(challenge["action_id"])

        # Bob: two completions, then the scorer's verdict written on its player document.
        session = await guest(http, url, bob, "Bot Bob")
        clients.append(await open_client(url, session["token"]))
        for _ in range(2):
            _, ack = await clients[1].play("quick")
            assert ack["ok"], ack

        async def audited() -> None:
            assert len(await audit(http, url, ann)) == 5
            assert len(await audit(http, url, bob)) == 2

        await eventually(audited, timeout=15)
        mongo = AsyncMongoClient(settings.mongodb_url)
        try:
            at = now_ms()
            await mongo[settings.mongodb_db]["players"].update_one({"_id": bob}, {"$set": {"suspicion": {
                "score": 0.93, "signals": SIGNALS, "difficulty_bonus": 6, "since": at - 600_000, "updated_ms": at,
            }}})
        finally:
            await mongo.close()

        async def listed() -> None:
            async with http.get(f"{url}/api/v1/admin/suspects", headers=OPERATOR) as resp:
                assert resp.status == 200, f"the suspects route: {resp.status} {await resp.text()}"
                assert [e["player_id"] for e in (await resp.json())["entries"]][:1] == [bob]

        await eventually(listed, timeout=15)

        shutil.rmtree(ARTIFACTS, ignore_errors=True)
        r = await run_node_json(
            node, SCRIPT,
            {"url": url, "chromium": chromium, "screenshots": str(ARTIFACTS), "api_key": API_KEY,
             "wrong_key": WRONG_KEY, "suspect_id": bob, "player_id": ann, "audit_entries": 5},
            NODE_TIMEOUT_S, hint=f"screenshots: {ARTIFACTS}\n",
        )
    finally:
        for client in clients:
            await client.sio.disconnect()

    # No JS error; the only failed loads are the refusals the test caused, each with its console line.
    assert r["console_errors"] == [], r["console_errors"]
    assert r["page_errors"] == [], r["page_errors"]
    assert r["failed_requests"] == [], r["failed_requests"]
    assert sorted((e["method"], e["path"], e["status"]) for e in r["http_errors"]) == [
        ("GET", "/api/v1/admin/stats", 401),  # the wrong key
        ("GET", "/api/v1/admin/stats", 401),  # the key changed under the page
        ("GET", f"/api/v1/players/{ann}", 404),  # the profile once erased
    ], r["http_errors"]
    assert len(r["resource_errors"]) == len(r["http_errors"]), r["resource_errors"]
    origin = urlsplit(url).netloc
    assert all(urlsplit(u).netloc == origin for u in r["requests"]), "a request left the server's origin"
    # The page runs only its own scripts and is never framed.
    csp = r["page_headers"]["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp

    # The key: asked for first, a wrong one refused, then kept only for the tab and sent on every call.
    assert r["console_hidden_before_key"] and r["api_calls_before_key"] == 0
    assert "refused" in r["wrong_key_error"] and "401" in r["wrong_key_error"]
    assert r["stored_after_wrong_key"] == 0
    assert r["storage"] == {"session": {"scoreboard.admin_key": API_KEY}, "local_length": 0, "cookie": ""}
    assert r["key_field_after"] == ""
    sent = [req["authorization"] for req in r["api_requests"]]
    assert sent.count(f"Bearer {WRONG_KEY}") == 1 and sent.count("Bearer a-key-the-server-does-not-know") == 1
    assert set(sent) == {f"Bearer {API_KEY}", f"Bearer {WRONG_KEY}", "Bearer a-key-the-server-does-not-know"}

    # Live figures: the completions chart (credited and refused by code), refreshed every 2 s.
    chart = r["chart"]
    assert chart["series"][0] == "credited"
    assert {"refused:proof_invalid", "refused:too_fast"} <= set(chart["series"]), chart["series"]
    assert chart["paths_nonempty"]
    legend = {line.split("\n")[0]: line for line in chart["legend"]}
    assert re.match(r"Credited\n5 in 5 min · ", legend["Credited"]), legend
    assert re.match(r"Refused: proof_invalid\n1 in 5 min", legend["Refused: proof_invalid"]), legend
    assert re.match(r"Refused: too_fast\n1 in 5 min", legend["Refused: too_fast"]), legend
    assert "5 credited and 2 refused (too_fast 1, proof_invalid 1)" in chart["summary"]
    assert re.match(r"\d\d:\d\d:\d\d: Credited \d+ · too_fast \d+ · proof_invalid \d+$", chart["readout"])
    assert r["stats_calls_in_4500ms"] >= 2
    assert r["live"].startswith("Live · updated ")
    # Connections by role and transport: the two python clients are players over websocket.
    assert r["connections"][0] == "Players 2 · 2 websocket, 0 polling", r["connections"]
    assert r["connection_bar_labels"][0] == "Players: 2 over websocket, 0 over polling"
    assert re.fullmatch(r"\d+", r["queue_depth"])
    assert r["lease_holder"] not in ("", "–")
    assert "(this one)" in r["instances"]

    # The suspect, most suspicious first, with its signals in words and figures.
    assert r["suspects_ids"][0] == bob
    suspect = r["suspect"]
    assert suspect["name"] == "Bot Bob" and suspect["level"] == "93% suspicious"
    assert suspect["meter"] == "Suspicion 93%"
    assert "Difficulty +6 bits · suspect since" in suspect["text"] and "(10 min ago)" in suspect["text"]
    assert [(s["key"], s["title"]) for s in suspect["signals"]] == [
        ("at_min_ms", "Completions right at min_ms 95%"),
        ("regular_timing", "Play times too regular 90%"),
        ("too_fast", "Too-fast bursts 25%"),
    ]
    assert suspect["signals"][0]["figures"] == ["Share: 97%", "At min_ms: 145", "Completions: 150", "Within: 150 ms"]
    assert suspect["signals"][1]["figures"] == [
        "Action: slow", "Completions: 150", "CV (sd/mean): 0.012", "SD: 5.1 ms", "Mean: 412 ms"]
    assert suspect["quiet"] == ("Checked, nothing seen: play without a break, refused proofs, "
                                "other players' tokens, many addresses.")
    assert r["suspect_lookup_title"] == "Bot Bob"

    # The player: profile, and its audit trail newest first with every field.
    player = r["player"]
    assert player["title"] == "Audit Ann" and player["sub"] == f"{ann} · region eu"
    assert player["total"] == "30" and "First steps" in player["achievements"]
    assert r["audit_headers"] == ["Completed", "Action", "Outcome", "Points", "Play time", "Difficulty", "Instance",
                                  "Client", "Action id"]
    rows = r["audit_rows"]
    assert [row["action_id"] for row in rows] == action_ids[::-1]
    assert [row["outcome"] for row in rows] == ["too_fast", "proof_invalid", "credited", "credited", "credited"]
    for row in rows:
        completed, action, outcome, points, play, difficulty, instance, client, action_id = row["cells"]
        assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3}", completed), completed
        assert row["title"].startswith("started 20") and ", completed 20" in row["title"]
        assert action in ("quick", "slow") and outcome == row["outcome"]
        assert points == ("10" if outcome == "credited" else "0")
        assert re.fullmatch(r"[\d.,]+ (ms|s)", play), play
        assert difficulty == "4 bits" and client == "127.0.0.1" and instance not in ("", "–")
        assert action_id == row["action_id"]
    assert r["audit_status"] == "5 entries shown, all of them."

    # Suspend, reinstate, hide, show: each answered, each shown.
    assert [m["state"].split("\n") for m in r["moderation"]] == [
        ["Suspended", "On the boards"], ["Not suspended", "On the boards"],
        ["Not suspended", "Hidden from boards"], ["Not suspended", "On the boards"],
    ]
    puts = [req for req in r["api_requests"] if req["method"] == "PUT"]
    assert [req["body"] for req in puts] == [
        '{"suspended":true,"hidden":false}', '{"suspended":false,"hidden":false}',
        '{"suspended":false,"hidden":true}', '{"suspended":false,"hidden":false}',
    ]
    assert all(req["path"] == f"/api/v1/players/{ann}/suspension" for req in puts)

    # Export: a JSON download of what the export route answered.
    assert r["export"]["file_name"].startswith(f"player-{ann}-") and r["export"]["file_name"].endswith(".json")
    assert ann in str(r["export"]["document"])
    assert r["export"]["status"].startswith("Exported ")

    # Erase asks first, says it is final, and only the typed player id lets it go ahead.
    dialog = r["erase_dialog"]
    assert "final" in dialog["text"] and "cannot be undone" in dialog["text"]
    assert dialog["ok_disabled_empty"] and dialog["ok_disabled_wrong"] and not dialog["ok_disabled_right"]
    assert r["after_cancel"] == {"deletes": 0, "profile_status": 200, "status": "Erase cancelled: nothing was changed."}
    assert r["after_escape"] == {"deletes": 0, "profile_status": 200}
    erased = r["after_erase"]
    assert erased["deletes"] == 1 and erased["profile_status"] == 404
    assert "this is final" in erased["status"] and erased["state"] == "Erased" and erased["erase_disabled"]
    assert erased["sub"].startswith("No profile")
    assert erased["audit_rows"] == 5, "the audit trail still answers, stripped"
    async with http.get(f"{url}/api/v1/players/{ann}") as resp:
        assert resp.status == 404

    # A 401 in the middle of a session forgets the key and asks for it again.
    assert "401" in r["reask"]["error"] and r["reask"]["session_length"] == 0 and r["reask"]["console_hidden"]

    for name in ("admin-console.png", "admin-console-top.png", "admin-console-viewport.png", "admin-player.png",
                 "admin-erase.png"):
        assert (ARTIFACTS / name).stat().st_size > 0, name


async def test_the_console_page_needs_no_key_to_load(start_app, settings, http):
    app = await start_app(settings, api_key=Secret(API_KEY))
    async with http.get(f"{app.url}/admin") as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
        assert "Operator console" in await resp.text()
        assert resp.headers["Referrer-Policy"] == "no-referrer"
    for name in ("admin.js", "admin-core.js", "admin.css"):
        async with http.get(f"{app.url}/static/{name}") as resp:
            assert resp.status == 200, name


async def test_console_logic_under_node(node):
    proc = await asyncio.create_subprocess_exec(
        node, "--test", "--test-reporter=spec", str(UNIT_TESTS), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    report = out.decode()
    assert proc.returncode == 0, report
    assert "ℹ fail 0" in report and "ℹ pass 0" not in report, report
