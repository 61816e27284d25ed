"""The sliding-window rate limit, against the tests' real redis-server (PROTOCOL.md section 5)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis
from redis.asyncio import Redis

from app.anticheat.limits import RateLimiter

MINUTE = 60_000
T0 = 1_795_428_000_000


@pytest.fixture
async def limiter(redis_proc) -> AsyncIterator[RateLimiter]:
    redis.Redis.from_url(redis_proc.url).flushall()
    client = Redis.from_url(redis_proc.url)
    try:
        yield RateLimiter(client)
    finally:
        await client.aclose()


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
        assert sync.zcard("rl:p") == 1
        assert 0 < sync.pttl("rl:p") <= MINUTE
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
