"""The sliding-window rate limit and the admission of action:start (suspended? rate limited?
bonus?), against the tests' real redis-server (PROTOCOL.md section 5)."""

from __future__ import annotations

import logging

import pytest
import redis
from redis.asyncio import Redis

from app.anticheat.behaviour import DifficultyBonus
from app.anticheat.limits import Admission, RateLimiter
from app.breaker import Breaker
from app.embedded import free_port
from app.leaderboard.keys import BONUS_KEY, SUSPENDED_KEY, rate_limit

MINUTE = 60_000
T0 = 1_795_428_000_000


@pytest.fixture
def limiter(redis_client: Redis) -> RateLimiter:
    return RateLimiter(redis_client)


async def test_allows_n_then_refuses_with_time_until_the_oldest_leaves(limiter: RateLimiter) -> None:
    for i in range(3):
        assert await limiter.hit("k", 3, MINUTE, T0 + i * 1000, f"m{i}") == 0
    wait = await limiter.hit("k", 3, MINUTE, T0 + 5000, "m3")
    assert wait == MINUTE - 5000  # the oldest hit (at T0) leaves the window at T0 + 60 s
    # Refused hits are not counted: asking again later shortens the wait accordingly.
    assert await limiter.hit("k", 3, MINUTE, T0 + 20_000, "m4") == MINUTE - 20_000


async def test_retry_after_is_exact(limiter: RateLimiter) -> None:
    assert await limiter.hit("k", 1, MINUTE, T0, "a") == 0
    wait = await limiter.hit("k", 1, MINUTE, T0 + 1, "b")
    assert wait == MINUTE - 1
    assert await limiter.hit("k", 1, MINUTE, T0 + 1 + wait - 1, "c") == 1
    assert await limiter.hit("k", 1, MINUTE, T0 + 1 + wait, "d") == 0


async def test_window_slides_one_hit_at_a_time(limiter: RateLimiter) -> None:
    for i in range(3):
        assert await limiter.hit("k", 3, MINUTE, T0 + i * 10_000, f"m{i}") == 0
    assert await limiter.hit("k", 3, MINUTE, T0 + 30_000, "x") == 30_000
    # Once the first hit has left, exactly one more is allowed; then the wait is for the second.
    assert await limiter.hit("k", 3, MINUTE, T0 + MINUTE, "m3") == 0
    assert await limiter.hit("k", 3, MINUTE, T0 + MINUTE + 1, "y") == 10_000 - 1
    assert await limiter.hit("k", 3, MINUTE, T0 + MINUTE + 10_000, "m4") == 0


async def test_retry_after_is_at_least_one_ms(limiter: RateLimiter) -> None:
    assert await limiter.hit("k", 1, MINUTE, T0, "a") == 0
    # A caller whose clock is behind still gets a positive wait, never 0 (which means allowed).
    assert await limiter.hit("k", 1, MINUTE, T0 - MINUTE, "b") >= 1


async def test_limit_of_n_allows_exactly_n(limiter: RateLimiter) -> None:
    results = [await limiter.hit("many", 30, MINUTE, T0 + i, f"m{i}") for i in range(31)]
    assert results[:30] == [0] * 30
    assert results[30] == MINUTE - 30


async def test_separate_keys_are_independent(limiter: RateLimiter) -> None:
    assert await limiter.hit("start:p1:a", 1, MINUTE, T0, "1") == 0
    assert await limiter.hit("start:p1:a", 1, MINUTE, T0, "2") > 0
    assert await limiter.hit("start:p1:b", 1, MINUTE, T0, "3") == 0
    assert await limiter.hit("start:p2:a", 1, MINUTE, T0, "4") == 0
    assert await limiter.hit("start:p2:a", 1, MINUTE, T0, "5") > 0


async def test_keys_live_in_redis_and_expire(limiter: RateLimiter, redis_proc) -> None:
    assert await limiter.hit("p", 2, MINUTE, T0, "a") == 0
    sync = redis.Redis.from_url(redis_proc.url)
    try:
        assert sync.zcard(rate_limit("p")) == 1
        assert 0 < sync.pttl(rate_limit("p")) <= MINUTE
    finally:
        sync.close()


async def test_state_is_shared_by_limiters_on_the_same_redis(limiter: RateLimiter, redis_proc) -> None:
    """Two instances (two clients) see one window."""
    other_client = Redis.from_url(redis_proc.url)
    try:
        other = RateLimiter(other_client)
        assert await limiter.hit("shared", 2, MINUTE, T0, "a") == 0
        assert await other.hit("shared", 2, MINUTE, T0 + 1, "b") == 0
        assert await limiter.hit("shared", 2, MINUTE, T0 + 2, "c") == MINUTE - 2
        assert await other.hit("shared", 2, MINUTE, T0 + 2, "d") == MINUTE - 2
    finally:
        await other_client.aclose()


# ---- admission: the suspension check, the rate limit and the bonus in one round trip


class Clock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


async def test_a_suspended_player_is_refused_before_its_start_is_counted(redis_client: Redis) -> None:
    limiter = RateLimiter(redis_client)
    await redis_client.sadd(SUSPENDED_KEY, "cheat")
    assert await limiter.admit("cheat", "start:cheat:a", 1, MINUTE, T0, "1") == Admission(True, 0, 0)
    await redis_client.srem(SUSPENDED_KEY, "cheat")
    # Lifted: the refused start used none of the limit.
    assert await limiter.admit("cheat", "start:cheat:a", 1, MINUTE, T0 + 1, "2") == Admission(False, 0, 0)
    assert (await limiter.admit("cheat", "start:cheat:a", 1, MINUTE, T0 + 2, "3")).wait_ms == MINUTE - 1


async def test_admission_shares_the_window_of_hit(redis_client: Redis) -> None:
    limiter = RateLimiter(redis_client)
    assert await limiter.hit("start:p:a", 2, MINUTE, T0, "1") == 0
    assert (await limiter.admit("p", "start:p:a", 2, MINUTE, T0 + 10, "2")).wait_ms == 0
    assert await limiter.hit("start:p:a", 2, MINUTE, T0 + 20, "3") == MINUTE - 20


async def test_admission_reads_the_bonus_and_keeps_it_for_the_cache_interval(redis_client: Redis) -> None:
    clock = Clock(T0)
    bonus = DifficultyBonus(redis_client, breaker=Breaker(), clock=clock, cache_ms=3000)
    limiter = RateLimiter(redis_client, bonus=bonus)
    await redis_client.hset(BONUS_KEY, mapping={"bot": 3, "big": 99, "junk": "x"})
    assert await limiter.admit("bot", "start:bot:a", 10, MINUTE, T0, "1") == Admission(False, 0, 3)
    assert [(await limiter.admit(p, f"start:{p}:a", 10, MINUTE, T0, "1")).bonus
            for p in ("big", "junk", "ann")] == [8, 0, 0]
    await redis_client.hset(BONUS_KEY, "bot", 6)
    clock.ms += 2999
    assert (await limiter.admit("bot", "start:bot:a", 10, MINUTE, T0, "2")).bonus == 3  # no read: cached
    clock.ms += 1
    assert (await limiter.admit("bot", "start:bot:a", 10, MINUTE, T0, "3")).bonus == 6


async def test_a_rate_limited_start_leaves_the_bonus_cache_alone(redis_client: Redis) -> None:
    clock = Clock(T0)
    bonus = DifficultyBonus(redis_client, breaker=Breaker(), clock=clock, cache_ms=3000)
    limiter = RateLimiter(redis_client, bonus=bonus)
    await redis_client.hset(BONUS_KEY, "bot", 5)
    assert (await limiter.admit("bot", "start:bot:a", 1, MINUTE, T0, "1")).bonus == 5
    clock.ms += 3000
    refused = await limiter.admit("bot", "start:bot:a", 1, MINUTE, T0 + 1, "2")
    assert refused.wait_ms == MINUTE - 1 and bonus.cached("bot") is None


async def test_admission_fails_open_while_redis_is_away(caplog) -> None:
    """Not suspended, the limit counted in memory, the bonus the one cached (else none); one
    warning for the failure, then the breaker skips Redis without another."""
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    breaker = Breaker()
    bonus = DifficultyBonus(dead, breaker=breaker)
    bonus.remember("bot", 4)  # read while Redis still answered
    limiter = RateLimiter(dead, breaker, bonus=bonus)
    try:
        with caplog.at_level(logging.WARNING, logger="app.anticheat.limits"):
            assert await limiter.admit("bot", "start:bot:a", 2, MINUTE, T0, "1") == Admission(False, 0, 4)
            assert await limiter.admit("ann", "start:ann:a", 2, MINUTE, T0, "1") == Admission(False, 0, 0)
            assert await limiter.admit("bot", "start:bot:a", 2, MINUTE, T0 + 1, "2") == Admission(False, 0, 4)
            assert (await limiter.admit("bot", "start:bot:a", 2, MINUTE, T0 + 2, "3")).wait_ms == MINUTE - 2
        assert len(caplog.records) == 1
    finally:
        await dead.aclose()
