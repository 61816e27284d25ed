"""Tournaments wired through the rest of the service: the credit record keeps its tournaments
(a retry or the reconciler credits the same ones, exactly once), a rebuild from MongoDB brings
the boards back, hiding and erasing take a player off them, and an export lists the entries."""

from __future__ import annotations

import redis.asyncio as aioredis

from app.clock import iso, now_ms
from app.handlers.http import SERVICES
from app.leaderboard import keys
from app.scores.repository import CreditRecord
from tests.support import Operator, eventually
from tests.tournaments.support import HOUR, Stack


async def test_the_credit_keeps_its_tournaments_and_counts_them_once(stack: Stack) -> None:
    await stack.db["players"].insert_one({"_id": "ann", "name": "Ann", "region": "eu", "total": 0, "actions": 0,
                                          "created_ms": 1})
    rec = CreditRecord("a1", "ann", "quick", 10, now_ms(), tournaments=("cup", "open"))
    [first] = await stack.repo.credit_many([rec])
    assert first.mine and first.after is not None and first.after["tournaments"] == {"cup": 10, "open": 10}
    assert first.before is not None and (first.before.get("tournaments") or {}).get("cup", 0) == 0
    # The same record again (a retry, the reconciler reading the log): counted once, same tournaments.
    [logged] = [CreditRecord.from_log(doc) async for doc in stack.db["actions"].find({"_id": "a1"})]
    assert logged.tournaments == ("cup", "open")
    [again] = await stack.repo.credit_many([logged])
    assert again.after is not None and again.after["tournaments"] == {"cup": 10, "open": 10} and not again.mine
    doc = await stack.db["players"].find_one({"_id": "ann"})
    assert doc["tournaments"] == {"cup": 10, "open": 10} and doc["total"] == 10
    # A credit of no tournament leaves the map alone and keeps no list in its log entry.
    [plain] = await stack.repo.credit_many([CreditRecord("a2", "ann", "quick", 10, now_ms())])
    assert plain.after is not None and plain.after["tournaments"] == {"cup": 10, "open": 10}
    assert "tournaments" not in await stack.db["actions"].find_one({"_id": "a2"})


async def test_rebuild_hide_erase_and_export(start_app, op_settings, player, http, redis_proc) -> None:
    app = await start_app(op_settings)
    op = Operator(http, app.url)
    t0 = now_ms()
    assert (await op.put("cup", {"title": "Cup", "start_at": iso(t0 - 1000), "end_at": iso(t0 + HOUR)}))[0] == 200
    ann_s, ann = await player(url=app.url)
    bob_s, bob = await player(url=app.url)
    a, b = ann_s["player"]["player_id"], bob_s["player"]["player_id"]
    for client, plays in ((ann, 2), (bob, 1)):
        assert (await client.call("tournament:join", {"tournament": "cup"}))["ok"]
        for _ in range(plays):
            assert (await client.play())[1]["tournaments"]

    async def rows() -> list[tuple[str, int]]:
        status, got = await op.call("GET", "/api/v1/leaderboards/tournament:cup", key=False)
        assert status == 200, got
        return [(e["player_id"], e["score"]) for e in got["entries"]]

    async def shows(expected: list[tuple[str, int]]) -> None:
        async def check() -> None:
            assert await rows() == expected
        await eventually(check, timeout=15)

    await shows([(a, 20), (b, 10)])
    # Redis loses everything: the rebuild from MongoDB brings the tournament board back, with its expiry.
    client = aioredis.Redis.from_url(redis_proc.url)
    try:
        await client.flushall()
        await shows([(a, 20), (b, 10)])
        board_keys = [k async for k in client.scan_iter(match="*tournament*cup*") 
                      if k.endswith((b":all", b":idx")) and not k.startswith(keys.PUB_PREFIX.encode())]
        ttls = {k: await client.pttl(k) for k in board_keys}
        # The board and its index go BOARD_HISTORY_DAYS (35) and a day after the end.
        assert len(ttls) == 2 and all(35 * 86_400_000 < ttl <= 36 * 86_400_000 + HOUR for ttl in ttls.values()), ttls
    finally:
        await client.aclose()

    # Hidden: off the tournament board too; shown again: back.
    for hidden, expected in ((True, [(b, 10)]), (False, [(a, 20), (b, 10)])):
        status, _ = await op.call("PUT", f"/api/v1/players/{a}/suspension", json={"suspended": False,
                                                                                   "hidden": hidden})
        assert status == 200
        await shows(expected)

    status, export = await op.call("GET", f"/api/v1/admin/players/{a}/export")
    assert status == 200
    [entry] = export["totals"]["tournaments"]
    assert (entry["tournament_id"], entry["state"], entry["score"]) == ("cup", "in", 20)

    status, _ = await op.call("DELETE", f"/api/v1/admin/players/{a}")
    assert status == 200
    await shows([(b, 10)])
    store = app.app[SERVICES].tournaments._store  # noqa: SLF001 - what the erasure left in MongoDB
    assert await store.entrant("cup", a) is None and await store.entrant("cup", b) is not None
    assert (await op.call("GET", "/api/v1/tournaments/cup", key=False))[1]["players"] == 1


