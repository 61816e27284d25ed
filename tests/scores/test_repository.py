"""The MongoDB repository against the MongoDB-wire server: batched credits equal one-by-one
credits, retries never credit twice, acks are stored once."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from app.clock import now_ms
from app.scores.achievements import AchievementBook
from app.scores.batching import BatchedCredits
from app.scores.repository import CreditRecord, ScoreRepository, open_database


@pytest.fixture
async def repo(mongo_proc):
    client, db = open_database(mongo_proc.url, f"r_{uuid.uuid4().hex[:10]}", 5000)
    repo = ScoreRepository(db)
    await repo.ensure_indexes()
    for pid in ("ann", "bob"):
        await repo.upsert_player(pid, pid.title(), "eu", None, now_ms())
    yield repo
    await client.close()


def rec(pid: str, points: int, at: int, aid: str | None = None) -> CreditRecord:
    return CreditRecord(aid or uuid.uuid4().hex, pid, "quick", points, at)


async def test_batch_of_one_players_records_chains_before_and_after(repo):
    at = now_ms()
    recs = [rec("ann", 60, at), rec("bob", 5, at + 1), rec("ann", 60, at + 2), rec("ann", 1, at + 3)]
    outcomes = await repo.credit_many(recs)
    assert [o.duplicate for o in outcomes] == [False] * 4
    totals = [(o.before["total"], o.after["total"]) for o in outcomes]
    assert totals == [(0, 60), (0, 5), (60, 120), (120, 121)]
    assert [o.after["actions"] for o in outcomes] == [1, 1, 2, 3]
    book = AchievementBook.load({})
    crossed = [[a.id for a in book.crossed(o.before, o.after, recs[0].day)] for o in outcomes]
    assert crossed == [["first_action"], ["first_action"], ["score_100"], []]
    doc = await repo.get_player("ann")
    assert doc["total"] == 121 and doc["actions"] == 3 and doc["days"][recs[0].day] == 121


async def test_retried_ids_in_a_batch_are_not_credited_twice(repo):
    at = now_ms()
    first = rec("ann", 10, at)
    [done] = await repo.credit_many([first])
    stored = await repo.finish(first.action_id, {"action_id": first.action_id, "points": 10})
    outcomes = await repo.credit_many([rec("ann", 10, at + 1, aid=first.action_id), rec("ann", 7, at + 2)])
    assert outcomes[0].duplicate and outcomes[0].ack == stored
    assert not outcomes[1].duplicate and outcomes[1].after["total"] == 17
    assert (await repo.get_player("ann"))["total"] == 17


async def test_half_done_credit_is_finished_by_the_retry(repo):
    at = now_ms()
    half = rec("bob", 9, at)
    await repo.actions.insert_one({"_id": half.action_id, "player_id": "bob", "action": "quick", "points": 9,
                                   "at_ms": at, "state": "pending"})  # an instance died right after its commit point
    [outcome] = await repo.credit_many([half])
    assert outcome.duplicate and outcome.after["total"] == 9
    [again] = await repo.credit_many([half])
    assert again.duplicate and (await repo.get_player("bob"))["total"] == 9


async def test_acks_are_stored_once(repo):
    a, b = uuid.uuid4().hex, uuid.uuid4().hex
    for aid in (a, b):
        await repo.credit(rec("ann", 1, now_ms(), aid=aid))
    await repo.finish(a, {"n": "first"})
    assert await repo.finish_many([(a, {"n": "second"}), (b, {"n": "b"})]) == [{"n": "first"}, {"n": "b"}]


async def test_group_commit_answers_every_caller(repo):
    writes = BatchedCredits(repo, max_batch=16)
    writes.start()
    try:
        at = now_ms()
        outcomes = await asyncio.gather(*(writes.credit(rec("ann" if i % 2 else "bob", 1, at + i)) for i in range(50)))
        assert sum(1 for o in outcomes if not o.duplicate) == 50
        assert (await repo.get_player("ann"))["total"] == 25 and (await repo.get_player("bob"))["total"] == 25
    finally:
        await writes.stop()
