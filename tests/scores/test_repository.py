"""The MongoDB repository against the MongoDB-wire server: batched credits equal one-by-one
credits, each record is applied at most once for the whole life of its challenge, every
record of a batch is settled from what the store shows (no waiting on another attempt),
acks are stored once, and the write concern is the URL's, journaled."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from pymongo import ReadPreference, WriteConcern
from pymongo.errors import BulkWriteError, ConfigurationError

from app.clock import now_ms
from app.scores.achievements import AchievementBook
from app.scores.batching import BatchedCredits
from app.scores.repository import PRUNE_AFTER_MS, CreditRecord, ScoreRepository, _apply_op, _log_doc, open_database


def new_player(pid: str, region: str = "eu") -> dict:
    """A player document as a first session writes it."""
    return {"_id": pid, "name": pid.title(), "region": region, "guild": None, "created_ms": now_ms(), "total": 0,
            "actions": 0, "days": {}, "weeks": {}, "active_days": [], "last_ms": 0}


@pytest.fixture
async def repo(mongo_proc):
    client, db = open_database(mongo_proc.url, f"r_{uuid.uuid4().hex[:10]}", 5000)
    repo = ScoreRepository(db)
    await repo.ensure_indexes()
    for pid in ("ann", "bob"):
        await repo.players.insert_one(new_player(pid))
    yield repo
    await client.close()


def rec(pid: str, points: int, at: int, aid: str | None = None) -> CreditRecord:
    return CreditRecord(aid or uuid.uuid4().hex, pid, "quick", points, at)


async def crashed_after_totals(repo: ScoreRepository, record: CreditRecord) -> None:
    """What an instance killed between its totals update and its ack leaves behind: the log
    entry (pending) and the totals applied under that instance's batch nonce."""
    await repo.actions.insert_one(_log_doc(record))
    await repo.players.bulk_write([_apply_op(record, "dead-instance")])


async def test_batch_of_one_players_records_chains_before_and_after(repo):
    at = now_ms()
    recs = [rec("ann", 60, at), rec("bob", 5, at + 1), rec("ann", 60, at + 2), rec("ann", 1, at + 3)]
    outcomes = await repo.credit_many(recs)
    assert [o.duplicate for o in outcomes] == [False] * 4
    assert all(o.mine and o.refused is None for o in outcomes)
    totals = [(o.before["total"], o.after["total"]) for o in outcomes]
    assert totals == [(0, 60), (0, 5), (60, 120), (120, 121)]
    assert [o.after["actions"] for o in outcomes] == [1, 1, 2, 3]
    book = AchievementBook.load({})
    crossed = [[a.id for a in book.crossed(o.before, o.after, recs[0].day)] for o in outcomes]
    assert crossed == [["first_action"], ["first_action"], ["score_100"], []]
    doc = await repo.get_player("ann")
    assert doc["total"] == 121 and doc["actions"] == 3 and doc["days"][recs[0].day] == 121
    assert "applied_ids" not in doc  # the guard map never leaves the repository


async def test_retried_ids_in_a_batch_are_not_credited_twice(repo):
    at = now_ms()
    first = rec("ann", 10, at)
    await repo.credit_many([first])
    stored = await repo.finish(first.action_id, {"action_id": first.action_id, "points": 10}, now_ms())
    outcomes = await repo.credit_many([rec("ann", 10, at + 1, aid=first.action_id), rec("ann", 7, at + 2)])
    assert outcomes[0].duplicate and outcomes[0].ack == stored
    assert not outcomes[1].duplicate and outcomes[1].after["total"] == 17
    assert (await repo.get_player("ann"))["total"] == 17


async def test_commit_point_only_is_applied_by_the_retry(repo):
    half = rec("bob", 9, now_ms())
    await repo.actions.insert_one(_log_doc(half))  # an instance died right after its commit point
    [outcome] = await repo.credit_many([half])
    assert outcome.duplicate and outcome.mine and outcome.after["total"] == 9
    [again] = await repo.credit_many([half])
    assert again.duplicate and not again.mine and again.after["total"] == 9
    assert (await repo.get_player("bob"))["total"] == 9


async def test_totals_applied_by_a_dead_attempt_are_finished_not_reapplied(repo):
    half = rec("bob", 9, now_ms())
    await crashed_after_totals(repo, half)
    [outcome] = await repo.credit_many([half])
    assert outcome.duplicate and not outcome.mine and outcome.refused is None
    assert (outcome.before["total"], outcome.after["total"]) == (0, 9)
    assert (await repo.get_player("bob"))["total"] == 9


async def test_applied_but_unfinished_stays_applied_after_many_later_credits(repo):
    """The old guard kept the last 256 ids: a half-done credit retried after 300 more was applied again."""
    at = now_ms()
    half = rec("ann", 1000, at)
    await crashed_after_totals(repo, half)
    for start in range(0, 300, 100):
        await repo.credit_many([rec("ann", 1, at + 1 + start + i) for i in range(100)])
    [outcome] = await repo.credit_many([rec("ann", 1000, at, aid=half.action_id)])
    assert outcome.refused is None and not outcome.mine
    assert (await repo.get_player("ann"))["total"] == 1300


async def test_two_attempts_at_once_apply_each_record_once(repo):
    """Two instances crediting the same challenges at the same instant: each record is applied
    by exactly one of them, and both settle every record without waiting on the other."""
    at = now_ms()
    recs = [rec("ann" if i % 2 else "bob", 5, at + i) for i in range(20)]
    one, two = await asyncio.gather(repo.credit_many(recs), repo.credit_many(list(recs)))
    for a, b in zip(one, two, strict=True):
        assert a.refused is None and b.refused is None
        assert [a.mine, b.mine].count(True) == 1
        assert [a.duplicate, b.duplicate].count(False) == 1
    assert (await repo.get_player("ann"))["total"] == 50 and (await repo.get_player("bob"))["total"] == 50


async def test_player_without_a_document_is_token_invalid_and_leaves_no_log(repo):
    ghost = rec("ghost", 10, now_ms())
    [outcome] = await repo.credit_many([ghost])
    assert outcome.refused == "token_invalid"
    assert await repo.actions.find_one({"_id": ghost.action_id}) is None
    assert await repo.pending(now_ms() + 1, 10) == []


async def test_suspended_player_is_never_credited_at_the_write(repo):
    await repo.set_suspended("bob", True)
    attempt = rec("bob", 10, now_ms())
    [outcome] = await repo.credit_many([attempt])
    assert outcome.refused == "suspended"
    assert (await repo.get_player("bob"))["total"] == 0
    assert await repo.actions.find_one({"_id": attempt.action_id}) is None
    await repo.set_suspended("bob", False)
    [later] = await repo.credit_many([rec("bob", 10, now_ms())])
    assert later.refused is None and later.after["total"] == 10


async def test_acks_are_stored_once(repo):
    a, b = uuid.uuid4().hex, uuid.uuid4().hex
    await repo.credit_many([rec("ann", 1, now_ms(), aid=aid) for aid in (a, b)])
    await repo.finish(a, {"n": "first"}, now_ms())
    assert await repo.finish_many([(a, {"n": "second"}), (b, {"n": "b"})], now_ms()) == [{"n": "first"}, {"n": "b"}]


async def test_pending_lists_unfinished_credits_and_guards_are_pruned_only_long_after_the_ack(repo):
    at = now_ms() - 2 * PRUNE_AFTER_MS
    done, half = rec("ann", 3, at), rec("ann", 4, at + 1)
    await repo.credit_many([done, half])
    await repo.finish(done.action_id, {"n": 1}, at + 10)
    assert [r.action_id for r in await repo.pending(now_ms(), 10)] == [half.action_id]
    assert await repo.prune_guards(at + 10 + PRUNE_AFTER_MS - 1, 10) == 0
    assert await repo.prune_guards(now_ms(), 10) == 1
    guards = (await repo.players.find_one({"_id": "ann"}))["applied_ids"]
    assert set(guards) == {half.action_id}  # the unfinished one keeps its guard
    # The finished one answers from its ack, so its guard is no longer needed.
    [again] = await repo.credit_many([done])
    assert again.ack == {"n": 1} and (await repo.get_player("ann"))["total"] == 7


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


@pytest.mark.parametrize(("url", "expected"), [
    ("mongodb://127.0.0.1:1/", WriteConcern(j=True)),
    ("mongodb://h1:1,h2:1,h3:1/?replicaSet=rs0", WriteConcern(w="majority", j=True)),
    ("mongodb://h1:1,h2:1/?replicaSet=rs0&w=2&wtimeoutMS=2000", WriteConcern(w=2, j=True, wtimeout=2000)),
    ("mongodb://127.0.0.1:1/?w=majority&journal=false", WriteConcern(w="majority", j=True)),
    ("mongodb://h1:1,h2:1,h3:1/?replicaSet=rs0&readPreference=secondaryPreferred",
     WriteConcern(w="majority", j=True)),
])
async def test_write_concern_is_the_urls_and_always_journaled(url, expected):
    client, db = open_database(url, "game", 1000)
    try:
        assert db.write_concern == expected
        assert db["players"].write_concern == expected
        # Reads of what was just written go to the primary; an election costs a retry.
        assert db.read_preference == ReadPreference.PRIMARY
        assert client.options.retry_writes is True
    finally:
        await client.close()


async def test_unacknowledged_write_concern_is_refused():
    with pytest.raises(ConfigurationError, match="w=0"):
        open_database("mongodb://127.0.0.1:1/?w=0", "game", 1000)


async def test_a_write_concern_error_counts_as_not_written(mongo_proc):
    """The MongoDB-wire server answers w=3 on one node with a write-concern error inside the bulk
    result; the old code read only writeErrors and went on to credit."""
    client, db = open_database(mongo_proc.url + "&w=3&wtimeoutMS=200", f"r_{uuid.uuid4().hex[:10]}", 5000)
    try:
        repo = ScoreRepository(db)
        await repo.players.with_options(write_concern=WriteConcern(j=True)).insert_one(new_player("cat"))
        with pytest.raises(BulkWriteError):
            await repo.credit_many([rec("cat", 5, now_ms())])
    finally:
        await client.close()
