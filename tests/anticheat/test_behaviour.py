"""The scorer (app/anticheat/behaviour.py) against the MongoDB-wire server and a real
redis-server: attempts stored by the real audit trail make it score their players; a bot gets
a suspicion over the threshold on its player document and a bonus in `difficulty:bonus`,
which action:start reads through DifficultyBonus; a person gets neither; a verdict that did
not change is not written again."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from app.actions.catalogue import BUILTIN_ACTIONS, Catalogue
from app.anticheat.behaviour import BONUS_KEY, RESCORE_MS, DifficultyBonus, Scorer
from app.anticheat.scoring import THRESHOLD, slots
from app.breaker import Breaker
from app.embedded import free_port
from app.operators.audit import AuditEntry, AuditTrail
from app.scores.repository import open_database
from tests.anticheat.test_scoring import T0, attempt, bot, human
from tests.support import eventually


class Clock:
    """Milliseconds the test turns."""

    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


@dataclass
class Stack:
    trail: AuditTrail
    scorer: Scorer
    players: AsyncCollection
    redis: Redis
    clock: Clock

    async def new_player(self, pid: str) -> None:
        await self.players.insert_one({"_id": pid, "name": pid, "region": "eu", "total": 0})

    async def store(self, pid: str, docs: list[dict]) -> None:
        """Record the attempts through the audit trail and write them, as the server does."""
        for doc in docs:
            self.trail.record(AuditEntry(
                player_id=pid, action_id=uuid.uuid4().hex, action=doc["action"], outcome=doc["outcome"],
                points=doc["points"], started_ms=doc["started_ms"], completed_ms=doc["completed_ms"],
                min_ms=doc["min_ms"], difficulty=doc["difficulty"], client=doc["client"],
                duplicate=doc["duplicate"]))
        while self.trail.backlog:
            await self.trail.flush()

    async def suspicion(self, pid: str) -> dict:
        doc = await self.players.find_one({"_id": pid})
        assert doc is not None and isinstance(doc.get("suspicion"), dict), doc
        return doc["suspicion"]

    async def bonus_in_redis(self, pid: str) -> int | None:
        raw = await self.redis.hget(BONUS_KEY, pid)
        return None if raw is None else int(raw)

    def later(self, ms: int = 30_000) -> None:
        """Past any rescore interval."""
        self.clock.ms += ms


def make_stack(db: AsyncDatabase, client: Redis, **kwargs) -> Stack:
    clock = Clock(T0 + 3_600_000)
    scorer: Scorer | None = None
    trail = AuditTrail(db, instance="i1", retention_days=30,
                       on_written=lambda ids: scorer.touch(ids) if scorer else None)
    scorer = Scorer(trail=trail, players=db["players"], redis=client, clock=clock,
                    slot_ms=slots(Catalogue.from_dict(BUILTIN_ACTIONS)), **kwargs)
    return Stack(trail, scorer, db["players"], client, clock)


@pytest.fixture
async def database(mongo_proc) -> AsyncIterator[AsyncDatabase]:
    mongo, db = open_database(mongo_proc.url, f"b_{uuid.uuid4().hex[:10]}", 5000)
    yield db
    await mongo.close()


@pytest.fixture
async def stack(database, redis_client) -> Stack:
    made = make_stack(database, redis_client)
    await made.trail.ensure_indexes()
    return made


async def test_a_bot_becomes_a_suspect_with_its_bonus_in_redis_a_person_does_not(stack: Stack, redis_client) -> None:
    await stack.new_player("bot")
    await stack.new_player("ann")
    await stack.store("bot", bot(1, 150))
    await stack.store("ann", human(1, 150))
    assert stack.scorer.waiting == 2  # touched by the audit writer
    assert await stack.scorer.pass_once() == 2

    suspicion = await stack.suspicion("bot")
    assert suspicion["score"] >= THRESHOLD and 1 <= suspicion["difficulty_bonus"] <= 8
    assert suspicion["signals"]["at_min_ms"]["fraction"] == 1.0
    assert suspicion["signals"]["regular_timing"]["action"] == "complete_level"
    assert suspicion["since"] == suspicion["updated_ms"] == stack.clock.ms
    assert await stack.bonus_in_redis("bot") == suspicion["difficulty_bonus"]

    ann = await stack.suspicion("ann")
    assert ann["score"] < THRESHOLD and ann["difficulty_bonus"] == 0 and ann["since"] is None
    assert await stack.bonus_in_redis("ann") is None

    bonus = DifficultyBonus(redis_client, breaker=Breaker())
    assert await bonus.bonus("bot") == suspicion["difficulty_bonus"]
    assert await bonus.bonus("ann") == 0
    assert await bonus.bonus("nobody") == 0


async def test_the_verdict_is_written_only_when_it_changed(stack: Stack) -> None:
    await stack.new_player("ann")
    docs = human(2, 190)
    await stack.store("ann", docs[:150])
    await stack.scorer.pass_once()
    first = await stack.suspicion("ann")
    assert stack.scorer.writes == 1

    # more of the same, scored again: the stored verdict stands, nothing is written
    for k in range(150, 190, 10):
        stack.later()
        await stack.store("ann", docs[k:k + 10])
        assert await stack.scorer.pass_once() == 1
    assert stack.scorer.writes == 1
    assert await stack.suspicion("ann") == first

    # a burst of stolen tokens: now a suspect, and that is written
    stack.later()
    t = docs[-1]["completed_ms"]
    await stack.store("ann", [attempt(t + k, 3000, outcome="token_invalid") for k in range(1, 7)])
    await stack.scorer.pass_once()
    assert stack.scorer.writes == 2
    after = await stack.suspicion("ann")
    assert after["signals"]["token_invalid"] == {"figure": 1.0, "count": 6}
    assert after["score"] >= THRESHOLD and after["since"] == after["updated_ms"] == stack.clock.ms
    assert await stack.bonus_in_redis("ann") == after["difficulty_bonus"]

    # still a suspect later: `since` stays when it first crossed
    stack.later()
    await stack.store("ann", [attempt(t + 100 + k, 3000, outcome="proof_invalid") for k in range(1, 12)])
    await stack.scorer.pass_once()
    assert stack.scorer.writes == 3
    assert (await stack.suspicion("ann"))["since"] == after["since"]


async def test_a_player_is_scored_at_most_once_per_rescore_interval_and_less_often_while_steady(
        stack: Stack) -> None:
    await stack.new_player("bot")
    docs = bot(3, 90)
    await stack.store("bot", docs[:30])
    assert await stack.scorer.pass_once() == 1
    assert stack.scorer.writes == 1
    await stack.store("bot", docs[30:60])
    assert await stack.scorer.pass_once() == 0  # touched again at once: it waits
    assert stack.scorer.waiting == 1
    stack.later(RESCORE_MS)
    assert await stack.scorer.pass_once() == 1
    assert stack.scorer.waiting == 0 and stack.scorer.writes == 1  # the same verdict: not written
    # steady, so the next look comes after twice the interval
    await stack.store("bot", docs[60:])
    stack.later(RESCORE_MS)
    assert await stack.scorer.pass_once() == 0
    stack.later(RESCORE_MS)
    assert await stack.scorer.pass_once() == 1
    verdict = await stack.scorer.score_player("bot")  # at once, whatever the interval: all 90 seen
    assert verdict is not None and verdict.signals["at_min_ms"]["completions"] == 90


async def test_a_bonus_comes_off_when_the_player_stops_looking_automated(stack: Stack) -> None:
    await stack.new_player("p")
    await stack.store("p", bot(4, 100))
    await stack.scorer.pass_once()
    assert await stack.bonus_in_redis("p")
    t = T0 + 10 * 3_600_000
    person = [dict(doc, completed_ms=doc["completed_ms"] + t - T0) for doc in human(4, 200)]
    stack.later()
    await stack.store("p", person)
    await stack.scorer.pass_once()
    suspicion = await stack.suspicion("p")
    assert suspicion["difficulty_bonus"] == 0 and suspicion["since"] is None
    assert await stack.bonus_in_redis("p") is None


async def test_a_bonus_lost_by_redis_is_set_again_at_the_next_scoring(stack: Stack, redis_client) -> None:
    await stack.new_player("bot")
    docs = bot(5, 120)
    await stack.store("bot", docs[:100])
    await stack.scorer.pass_once()
    bits = await stack.bonus_in_redis("bot")
    await redis_client.flushall()  # a Redis restarted empty
    stack.later()
    await stack.store("bot", docs[100:])
    await stack.scorer.pass_once()
    assert await stack.bonus_in_redis("bot") == bits
    assert stack.scorer.writes == 1


async def test_an_erased_player_is_not_brought_back_by_its_audit_entries(stack: Stack, redis_client) -> None:
    await stack.new_player("gone")
    await stack.store("gone", bot(6, 60))
    await stack.scorer.pass_once()
    await stack.players.delete_one({"_id": "gone"})
    stack.later()
    await stack.store("gone", bot(7, 10))
    await stack.scorer.pass_once()
    assert await stack.players.count_documents({"_id": "gone"}) == 0
    assert await stack.bonus_in_redis("gone") is None


async def test_a_stored_suspicion_this_code_did_not_write_is_replaced(stack: Stack) -> None:
    await stack.players.insert_one({"_id": "odd", "suspicion": "garbage"})
    await stack.players.insert_one({"_id": "odd2", "suspicion": {"signals": [1, 2], "score": "x"}})
    await stack.store("odd", bot(8, 40))
    await stack.store("odd2", bot(9, 40))
    assert await stack.scorer.pass_once() == 2
    assert (await stack.suspicion("odd"))["score"] >= THRESHOLD
    assert (await stack.suspicion("odd2"))["score"] >= THRESHOLD


async def test_the_waiting_players_are_bounded(database, redis_client) -> None:
    made = make_stack(database, redis_client, max_dirty=3)
    made.scorer.touch({"a", "b"})
    made.scorer.touch(["b", "c", "d", "e"])
    assert made.scorer.waiting == 3 and made.scorer.dropped == 2


async def test_one_failing_player_never_stops_the_others_and_is_retried(database, redis_client, caplog) -> None:
    """Redis away: the bot's bonus cannot be set (it waits for a later pass); the person,
    with no bonus to set, is scored all the same. Logged once, not per player."""
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    made = make_stack(database, dead)
    await made.trail.ensure_indexes()
    for pid in ("bot1", "bot2", "ann"):
        await made.new_player(pid)
    await made.store("bot1", bot(10, 60))
    await made.store("bot2", bot(11, 60))
    await made.store("ann", human(10, 60))
    with caplog.at_level(logging.WARNING, logger="app.anticheat.behaviour"):
        assert await made.scorer.pass_once() == 1
    assert len([r for r in caplog.records if "behaviour scoring failed" in r.message]) == 1
    assert (await made.suspicion("ann"))["score"] < THRESHOLD
    assert (await made.suspicion("bot1"))["score"] >= THRESHOLD  # stored; its bonus is not in Redis yet
    assert made.scorer.waiting == 2  # both bots again, after the rescore interval
    assert await made.scorer.pass_once() == 0
    await dead.aclose()


async def test_the_loop_scores_what_the_audit_writer_stored(stack: Stack) -> None:
    """The real loop on the real clock, briefly: touched players are scored within a pass."""
    import asyncio

    await stack.new_player("bot")
    scorer = Scorer(trail=stack.trail, players=stack.players, redis=stack.redis,
                    slot_ms={}, interval_s=0.05)
    task = asyncio.create_task(scorer.run())
    try:
        await stack.store("bot", bot(12, 50))
        scorer.touch({"bot"})

        async def scored() -> None:
            doc = await stack.players.find_one({"_id": "bot"})
            assert doc and (doc.get("suspicion") or {}).get("difficulty_bonus", 0) > 0

        await eventually(scored)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_the_bonus_fails_open_and_logs_once_while_redis_is_away(caplog) -> None:
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    bonus = DifficultyBonus(dead, breaker=Breaker(cooldown_s=0))
    with caplog.at_level(logging.WARNING, logger="app.anticheat.behaviour"):
        assert [await bonus.bonus("p") for _ in range(3)] == [0, 0, 0]
    assert len(caplog.records) == 1
    await dead.aclose()


async def test_a_bonus_out_of_range_in_redis_is_clamped(redis_client) -> None:
    await redis_client.hset(BONUS_KEY, mapping={"big": 99, "neg": -3, "junk": "x"})
    bonus = DifficultyBonus(redis_client, breaker=Breaker())
    assert [await bonus.bonus(p) for p in ("big", "neg", "junk")] == [8, 0, 0]


async def test_a_bonus_is_read_from_redis_at_most_once_per_cache_interval(redis_client) -> None:
    clock = Clock(T0)
    bonus = DifficultyBonus(redis_client, breaker=Breaker(), clock=clock, cache_ms=3000, cache_size=2)
    await redis_client.hset(BONUS_KEY, "bot", 3)
    assert await bonus.bonus("bot") == 3
    await redis_client.hset(BONUS_KEY, "bot", 6)
    clock.ms += 2999
    assert await bonus.bonus("bot") == 3  # kept a moment, so a fast player costs no HGET per challenge
    clock.ms += 1
    assert await bonus.bonus("bot") == 6
    for pid in ("a", "b", "c"):
        assert await bonus.bonus(pid) == 0
    # bounded: two players kept, the oldest reads go first, so "a" is read again at once
    await redis_client.hset(BONUS_KEY, mapping={"a": 2, "c": 2})
    assert [await bonus.bonus("a"), await bonus.bonus("c")] == [2, 0]
