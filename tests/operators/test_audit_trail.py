"""The audit trail's writer and reader on the MongoDB-wire server: entries are written in
batches, a flood is dropped and counted past the bound instead of kept, pages are newest first
and never overlap, a bad cursor is invalid_payload, erasure strips the address."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from app.clock import now_ms
from app.errors import ProtocolError
from app.operators.audit import AuditEntry, AuditTrail
from app.scores.repository import open_database
from tests.support import eventually


@pytest.fixture
async def db(mongo_proc):
    client, database = open_database(mongo_proc.url, f"a_{uuid.uuid4().hex[:10]}", 5000)
    yield database
    await client.close()


def entry(player: str, at: int, outcome: str = "credited", client: str = "203.0.113.9") -> AuditEntry:
    return AuditEntry(player_id=player, action_id=uuid.uuid4().hex, action="quick", outcome=outcome,
                      points=10 if outcome == "credited" else 0, started_ms=at - 700, completed_ms=at, min_ms=500,
                      difficulty=12, client=client)


async def test_entries_are_paged_newest_first_without_overlap(db):
    written: list[set[str]] = []
    trail = AuditTrail(db, instance="i-1", retention_days=30, on_written=written.append)
    await trail.ensure_indexes()
    at = now_ms()
    for i in range(25):
        trail.record(entry("ann", at + i // 2, "credited" if i % 3 else "proof_invalid"))  # equal times too
    trail.record(entry("bob", at))
    while trail.backlog:
        await trail.flush()
    assert set().union(*written) == {"ann", "bob"}
    seen, cursor = [], None
    while True:
        page = await trail.page("ann", 10, cursor)
        seen += page["entries"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 25 and len({e["action_id"] for e in seen}) == 25
    assert [e["completed_at"] for e in seen] == sorted((e["completed_at"] for e in seen), reverse=True)
    first = seen[0]
    assert set(first) == {"action_id", "action", "outcome", "duplicate", "points", "started_at", "completed_at",
                          "play_ms", "difficulty", "instance", "client"}
    assert first["play_ms"] == 700 and first["instance"] == "i-1" and first["client"] == "203.0.113.9"
    assert {e["outcome"] for e in seen} == {"credited", "proof_invalid"}


@pytest.mark.parametrize("cursor", ["", "x", "12.zz", "1." + "0" * 23, "9" * 16 + "." + "a" * 24])
async def test_a_cursor_this_server_did_not_give_is_invalid_payload(db, cursor):
    trail = AuditTrail(db, instance="i-1", retention_days=30)
    with pytest.raises(ProtocolError) as refused:
        await trail.page("ann", 10, cursor)
    assert refused.value.code == "invalid_payload"


async def test_a_flood_is_dropped_and_counted_past_the_bound_and_written_in_few_batches(db):
    dropped: list[int] = []
    trail = AuditTrail(db, instance="i-1", retention_days=30, on_dropped=dropped.append, max_pending=3000)
    inserts = 0
    original = trail.entries.insert_many

    async def counting(docs, **kwargs):
        nonlocal inserts
        inserts += 1
        return await original(docs, **kwargs)

    trail.entries.insert_many = counting  # type: ignore[method-assign]  # counts the real writes
    at = now_ms()
    for i in range(50_000):
        trail.record(entry("flood", at + i, "proof_invalid"))
    assert trail.backlog == 3000 and sum(dropped) == 47_000
    task = asyncio.create_task(trail.run())
    async def all_written() -> None:
        assert await trail.entries.count_documents({"player_id": "flood"}) == 3000

    try:
        await eventually(all_written)
    finally:
        task.cancel()
    assert inserts == 3
    assert await trail.entries.count_documents({"player_id": "flood"}) == 3000


async def test_erasure_strips_the_address_and_keeps_the_trail(db):
    trail = AuditTrail(db, instance="i-1", retention_days=30)
    trail.record(entry("eve", now_ms()))
    await trail.flush()
    assert await trail.anonymize("eve") == 1
    [kept] = (await trail.page("eve", 10, None))["entries"]
    assert kept["client"] is None and kept["outcome"] == "credited"


async def test_retention_is_a_ttl_index(db):
    trail = AuditTrail(db, instance="i-1", retention_days=45)
    await trail.ensure_indexes()
    indexes = await trail.entries.index_information()
    assert any(ix.get("expireAfterSeconds") == 45 * 86_400 for ix in indexes.values())
