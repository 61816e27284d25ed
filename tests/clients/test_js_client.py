"""The official JS Socket.IO client (node_modules/socket.io-client) against a real server, playing only by
PROTOCOL.md: sessions over HTTP, connect with a token, challenge, proof of work, completion, duplicate
retry, watch, leaderboard:get; a bad token; a spectator. Over websocket, polling alone, and the default
(polling, then the upgrade to websocket). The JS side is tests/clients/js/scenario.mjs."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support import run_node_json

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).resolve().parent / "js" / "scenario.mjs"
NODE_TIMEOUT_S = 20
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

# (pytest id, the transports option given to the JS client; None = the client's default)
TRANSPORTS = [
    pytest.param(["websocket"], id="websocket"),
    pytest.param(["polling"], id="polling"),
    pytest.param(None, id="default-upgrade"),
]
# engine.io transport names the client is expected to report: (first, upgrades, final)
EXPECTED_ENGINE: dict[tuple[str, ...] | None, tuple[str, list[str], str]] = {
    ("websocket",): ("websocket", [], "websocket"),
    ("polling",): ("polling", [], "polling"),
    None: ("polling", ["websocket"], "websocket"),
}


async def run_js(node: str, **config) -> dict:
    """Run the JS scenario; return the one JSON object it printed."""
    return await run_node_json(node, SCRIPT, config, NODE_TIMEOUT_S)


def assert_iso_utc(value: object) -> datetime:
    assert isinstance(value, str) and ISO_UTC.match(value), value
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def assert_error(reply: dict, code: str) -> None:
    assert reply == {"ok": False, "error": {"code": code, "message": reply["error"]["message"]}}, reply
    assert isinstance(reply["error"]["message"], str) and reply["error"]["message"]


def assert_engine(transport: dict, transports: list[str] | None) -> None:
    first, upgrades, final = EXPECTED_ENGINE[tuple(transports) if transports else None]
    assert transport == {"first": first, "upgrades": upgrades, "final": final}, transport


@pytest.mark.parametrize("transports", TRANSPORTS)
async def test_js_client_plays_one_action(node, app_url, transports):
    player_id = f"js{uuid.uuid4().hex[:10]}"
    name = "JS Player"
    before = datetime.now(UTC)
    r = await run_js(node, scenario="play", url=app_url, transports=transports,
                     player_id=player_id, name=name, region="eu", action="quick")
    assert r["client_version"] == "4.8.4"
    assert Path(r["client_path"]).is_relative_to(ROOT / "node_modules" / "socket.io-client")

    # Section 3: the session.
    session = r["session"]
    assert session["status"] == 201, session
    body = session["body"]
    assert body == {
        "token": body["token"],
        "player": {"player_id": player_id, "name": name, "region": "eu", "guild": None},
        "expires_in": body["expires_in"],
        "guest_key": body["guest_key"],
    }
    assert isinstance(body["token"], str) and body["token"]
    assert isinstance(body["guest_key"], str) and len(body["guest_key"]) >= 32
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0

    # Section 4: connected as a player.
    assert r["connect"]["connected"] is True, r["connect"]

    # Section 5, step 1: the challenge, with the test catalogue's "quick" rules.
    start = r["start"]
    challenge = start["challenge"]
    assert start == {
        "ok": True,
        "challenge": {
            "action_id": challenge["action_id"],
            "token": challenge["token"],
            "difficulty": 4,
            "min_ms": 0,
            "expires_at": challenge["expires_at"],
        },
    }
    assert isinstance(challenge["action_id"], str) and challenge["action_id"]
    assert isinstance(challenge["token"], str) and challenge["token"]
    expires_at = assert_iso_utc(challenge["expires_at"])  # ttl_s = 60
    assert before + timedelta(seconds=50) <= expires_at <= datetime.now(UTC) + timedelta(seconds=61)

    # Step 2: the proof the JS client found really has the zero bits (checked independently here).
    proof = r["proof"]
    assert 1 <= len(proof) <= 64
    digest = hashlib.sha256(f"{challenge['token']}:{proof}".encode()).digest()
    assert 256 - int.from_bytes(digest, "big").bit_length() >= 4
    assert r["proof_zero_bits"] >= 4

    # Step 3: the completion ack, then the same token and proof again: the same ack, duplicate.
    complete = r["complete"]
    assert complete == {
        "ok": True,
        "action_id": challenge["action_id"],
        "points": 10,
        "duplicate": False,
        "score": {"total": 10, "daily": 10, "weekly": 10},
        "achievements": complete["achievements"],
    }
    # A fresh database: this player's first credit, alone at the top of the global board.
    assert isinstance(complete["achievements"], list)
    assert sorted(complete["achievements"]) == ["first_action", "top_1", "top_10"]
    assert r["retry"] == {**complete, "duplicate": True}

    # Section 6: the player's own region room got the delta; a snapshot then includes it.
    row = {"rank": 1, "player_id": player_id, "name": name, "score": 10}
    deltas = [d for d in r["events"]["leaderboard:delta"] if d["room"] == "region:eu"]
    assert deltas, r["events"]["leaderboard:delta"]
    delta = deltas[0]
    assert delta == {
        "room": "region:eu",
        "seq": delta["seq"],
        "at": delta["at"],
        "boards": {"all": [row], "daily": [row], "weekly": [row]},
    }
    assert isinstance(delta["seq"], int) and delta["seq"] >= 1
    assert_iso_utc(delta["at"])
    # (v1.1) When the daily and weekly boards start over: the next UTC midnight and Monday.
    resets = r["watch"]["snapshot"]["resets_at"]
    assert set(resets) == {"daily", "weekly"} and resets["daily"] <= resets["weekly"]
    for value in resets.values():
        assert_iso_utc(value)
        assert value.endswith("T00:00:00.000Z")
    assert r["watch"] == {
        "ok": True,
        "room": "region:eu",
        "snapshot": {"room": "region:eu", "seq": delta["seq"],
                     "boards": {"all": [row], "daily": [row], "weekly": [row]}, "resets_at": resets},
    }
    other = r["watch_other"]
    assert other == {
        "ok": True,
        "room": "region:na",
        "snapshot": {"room": "region:na", "seq": other["snapshot"]["seq"],
                     "boards": {"all": [], "daily": [], "weekly": []}, "resets_at": resets},
    }
    assert isinstance(other["snapshot"]["seq"], int) and other["snapshot"]["seq"] >= 0

    assert r["leaderboard"] == {"ok": True, "board": "region:eu", "period": "all", "entries": [row], "total_players": 1,
                                "resets_at": None}
    assert r["leaderboard_global_around"] == {
        "ok": True, "board": "global", "period": "weekly", "entries": [row], "total_players": 1,
        "resets_at": resets["weekly"],
    }

    # achievement:unlocked, one per id in the ack, to the player's own room.
    unlocked = r["events"]["achievement:unlocked"]
    assert sorted(u["id"] for u in unlocked) == sorted(complete["achievements"])
    for u in unlocked:
        assert set(u) == {"id", "name", "description", "unlocked_at"}, u
        assert isinstance(u["name"], str) and u["name"] and isinstance(u["description"], str)
        assert_iso_utc(u["unlocked_at"])

    # Section 1: the transport the client asked for is the one it used throughout.
    assert_engine(r["transport"], transports)
    if transports is None:
        assert r["after_upgrade"] == {
            "ok": True, "board": "region:eu", "period": "all", "entries": [row], "total_players": 1, "resets_at": None,
        }


@pytest.mark.parametrize("transports", TRANSPORTS)
async def test_js_client_bad_token_is_refused(node, app_url, transports):
    r = await run_js(node, scenario="bad_token", url=app_url, transports=transports,
                     player_id=f"js{uuid.uuid4().hex[:10]}", name="Tamper", region="eu")
    assert r["session_status"] == 201
    assert set(r["attempts"]) == {"garbage", "tampered", "empty_string"}
    for label, attempt in r["attempts"].items():
        assert attempt["connected"] is False, (label, attempt)
        assert attempt["error"]["message"] == "token_invalid", (label, attempt)


@pytest.mark.parametrize("transports", TRANSPORTS)
async def test_js_spectator_may_watch_and_read_but_not_act(node, app_url, transports):
    r = await run_js(node, scenario="spectator", url=app_url, transports=transports, action="quick")
    assert set(r["runs"]) == {"no_auth", "empty_auth"}
    for label, run in r["runs"].items():
        assert run["connect"]["connected"] is True, (label, run)
        assert_error(run["start"], "not_a_player")
        watch = run["watch"]
        assert watch == {
            "ok": True,
            "room": "region:eu",
            "snapshot": {"room": "region:eu", "seq": watch["snapshot"]["seq"],
                         "boards": {"all": [], "daily": [], "weekly": []},
                         "resets_at": watch["snapshot"]["resets_at"]},
        }, (label, watch)
        assert set(watch["snapshot"]["resets_at"]) == {"daily", "weekly"}
        assert run["leaderboard"] == {"ok": True, "board": "global", "period": "all", "entries": [], "total_players": 0,
                                      "resets_at": None}
        first, _, _ = EXPECTED_ENGINE[tuple(transports) if transports else None]
        assert run["transport"]["first"] == first, (label, run["transport"])
        if transports == ["polling"]:
            assert run["transport"] == {"first": "polling", "upgrades": [], "final": "polling"}
