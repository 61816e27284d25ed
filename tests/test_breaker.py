"""The Redis breaker, on a clock the test turns."""

from __future__ import annotations

from app.breaker import Breaker


def test_breaker_skips_redis_for_its_cooldown_after_a_failure() -> None:
    now = [100.0]
    breaker = Breaker(cooldown_s=2, clock=lambda: now[0])
    assert breaker.ready()
    breaker.trip()
    assert not breaker.ready()
    now[0] += 1.9
    assert not breaker.ready()
    now[0] += 0.1
    assert breaker.ready()
