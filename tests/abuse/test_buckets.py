"""Token buckets, per-connection event limits and per-IP limits, on a clock the test turns."""

from __future__ import annotations

from app.abuse.buckets import BucketsByKey, TokenBucket
from app.abuse.events import FLOOD_WINDOW_S, EventGuard
from app.abuse.peers import PeerLimits
from app.anticheat.limits import LocalWindows


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_says_when_the_next_token_comes() -> None:
    bucket = TokenBucket(rate=2, capacity=3, now=0)
    assert [bucket.take(0) for _ in range(3)] == [0, 0, 0]
    assert bucket.take(0) == 500
    assert bucket.take(0.25) == 250
    assert bucket.take(0.5) == 0
    assert bucket.full(10)


def test_buckets_by_key_are_separate_and_forget_only_idle_keys() -> None:
    clock = Clock()
    buckets = BucketsByKey(rate=1, capacity=1, max_keys=2, clock=clock)
    assert buckets.take("a") == 0 and buckets.take("b") == 0
    assert buckets.take("a") == 1000
    clock.now += 0.5
    assert buckets.take("c") == 0  # over max_keys: nothing is full yet, nothing dropped
    assert len(buckets) == 3 and buckets.take("a") == 500
    clock.now += 5
    assert buckets.take("d") == 0  # every refilled bucket dropped
    assert len(buckets) == 1


def test_event_guard_refuses_past_the_rate_and_reports_a_flood_once() -> None:
    clock = Clock()
    guard = EventGuard(per_s=10, burst=5, clock=clock)
    assert all(guard.admit("s").allowed for _ in range(5))
    # The first refusal tells the wait; each event sent before it is over is a strike.
    refused = [guard.admit("s") for _ in range(7)]
    assert all(not v.allowed and v.retry_after_ms == 100 for v in refused)
    assert [v.flood for v in refused] == [False] * 6 + [True]
    assert not guard.admit("s").flood  # told once
    assert guard.admit("other").allowed  # per connection


def test_event_guard_never_floods_a_client_that_waits_as_told() -> None:
    clock = Clock()
    guard = EventGuard(per_s=10, burst=5, clock=clock)
    for _ in range(200):
        verdict = guard.admit("s")
        assert not verdict.flood
        clock.now += verdict.retry_after_ms / 1000 if not verdict.allowed else 0.01


def test_event_guard_forgets_old_refusals_and_closed_connections() -> None:
    clock = Clock()
    guard = EventGuard(per_s=1, burst=3, clock=clock)
    for _ in range(3):
        guard.admit("s")
    for _ in range(3):
        assert not guard.admit("s").allowed
    clock.now += FLOOD_WINDOW_S + 1
    for _ in range(3):
        guard.admit("s")  # a refilled bucket: 3 allowed
    assert not any(guard.admit("s").flood for _ in range(3))
    guard.forget("s")
    assert guard.admit("s").allowed


def test_peer_limits_count_open_connections_per_address() -> None:
    peers = PeerLimits(connections_per_ip=2, sessions_per_minute=0)
    assert peers.open_connection("1.1.1.1") and peers.open_connection("1.1.1.1")
    assert not peers.open_connection("1.1.1.1")
    assert peers.open_connection("2.2.2.2")
    peers.close_connection("1.1.1.1")
    assert peers.open_connection("1.1.1.1")
    assert peers.session_wait_ms("1.1.1.1") == 0  # 0 turns the session limit off


def test_peer_limits_pace_sessions_per_address() -> None:
    clock = Clock()
    peers = PeerLimits(connections_per_ip=0, sessions_per_minute=2, clock=clock)
    assert peers.session_wait_ms("a") == 0 and peers.session_wait_ms("a") == 0
    assert peers.session_wait_ms("a") == 30_000
    assert peers.session_wait_ms("b") == 0
    clock.now += 30
    assert peers.session_wait_ms("a") == 0
    assert all(peers.open_connection("a") for _ in range(1000))  # 0 turns the connection limit off


def test_local_windows_match_the_redis_sliding_window() -> None:
    windows = LocalWindows(max_keys=1)
    assert [windows.hit("k", 2, 60_000, t) for t in (0, 10, 20)] == [0, 0, 59_980]
    assert windows.hit("k", 2, 60_000, 60_000) == 0
    assert windows.hit("other", 2, 60_000, 200_000) == 0  # past max_keys: idle windows dropped
    assert windows.hit("k", 2, 60_000, 200_001) == 0

