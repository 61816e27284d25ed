"""Behaviour scoring seen from outside, with the real JS client: a bot that completes exactly at
min_ms is given harder challenges within 150 completions and tops the suspects list, never
suspended; a person with irregular 0.2-2 s pauses keeps the catalogue's difficulty."""

from __future__ import annotations

import asyncio
import json
import uuid

from app.config import Secret
from tests.processes import ROOT
from tests.support import run_node_json

SCRIPT = ROOT / "tests" / "clients" / "js" / "fairplay.mjs"
API_KEY = "operator-key-0123456789"
BASE_DIFFICULTY = 4


async def test_bot_at_min_ms_pays_more_work_and_tops_the_suspects_a_person_does_not(node, start_app, settings,
                                                                                     tmp_path, http):
    catalogue = tmp_path / "fairplay.json"
    catalogue.write_text(json.dumps({"actions": {"timed": {
        "points": 1, "min_ms": 150, "ttl_s": 60, "difficulty": BASE_DIFFICULTY, "per_minute": 10000}}}))
    app = await start_app(settings, actions_file=catalogue, api_key=Secret(API_KEY))
    bot_id, human_id = f"bot{uuid.uuid4().hex[:6]}", f"human{uuid.uuid4().hex[:6]}"
    common = {"url": app.url, "action": "timed"}
    bot, human = await asyncio.gather(
        run_node_json(node, SCRIPT, {**common, "player_id": bot_id, "mode": "bot", "completions": 150, "seed": 1}, 180),
        run_node_json(node, SCRIPT, {**common, "player_id": human_id, "mode": "human", "completions": 30, "seed": 7},
                      180),
    )
    assert bot["credited"] == 150 and "suspended" not in bot["errors"], bot["errors"]
    raised = [i for i, bits in enumerate(bot["difficulties"]) if bits > BASE_DIFFICULTY]
    assert raised and raised[0] < 150, bot["difficulties"]
    assert max(bot["difficulties"]) <= BASE_DIFFICULTY + 8
    assert set(human["difficulties"]) == {BASE_DIFFICULTY}, human["difficulties"]
    assert human["credited"] == 30

    async with http.get(f"{app.url}/api/v1/admin/suspects", headers={"Authorization": f"Bearer {API_KEY}"}) as resp:
        assert resp.status == 200, await resp.text()
        suspects = (await resp.json())["entries"]
    assert suspects and suspects[0]["player_id"] == bot_id, suspects
    assert suspects[0]["difficulty_bonus"] > 0 and suspects[0]["signals"]
    assert human_id not in [s["player_id"] for s in suspects]
