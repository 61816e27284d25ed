"""The per-connection event limit: a socket that sends faster than its bucket refills is
answered `rate_limited`; one that goes on sending without waiting is disconnected."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from app.abuse.buckets import TokenBucket

FLOOD_WINDOW_S = 10.0


@dataclass(frozen=True)
class Verdict:
    retry_after_ms: int = 0
    flood: bool = False

    @property
    def allowed(self) -> bool:
        return self.retry_after_ms == 0


ALLOWED = Verdict()


class _Conn:
    __slots__ = ("bucket", "strikes", "wait_until", "flooded")

    def __init__(self, bucket: TokenBucket) -> None:
        self.bucket = bucket
        # Made at the first refused event: a deque is 760 bytes, and most connections never get one.
        self.strikes: deque[float] | None = None
        self.wait_until = 0.0
        self.flooded = False


class EventGuard:
    """`per_s` events a second with bursts of `burst`. A refused event that arrives before
    the `retry_after_ms` it was told is a strike; more than `burst` strikes within
    FLOOD_WINDOW_S make a flood, reported once per connection. A client that waits as
    told is never disconnected, however often it reaches the limit."""

    def __init__(self, per_s: int, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._per_s = per_s
        self._burst = burst
        self._clock = clock
        self._conns: dict[str, _Conn] = {}

    def admit(self, sid: str) -> Verdict:
        now = self._clock()
        conn = self._conns.get(sid)
        if conn is None:
            conn = self._conns[sid] = _Conn(TokenBucket(self._per_s, self._burst, now))
        wait_ms = conn.bucket.take(now)
        if not wait_ms:
            return ALLOWED
        strikes = conn.strikes
        if strikes is None:
            strikes = conn.strikes = deque()
        if now < conn.wait_until:
            strikes.append(now)
        conn.wait_until = max(conn.wait_until, now + wait_ms / 1000)
        while strikes and strikes[0] < now - FLOOD_WINDOW_S:
            strikes.popleft()
        flood = not conn.flooded and len(strikes) > self._burst
        conn.flooded = conn.flooded or flood
        return Verdict(wait_ms, flood=flood)

    def forget(self, sid: str) -> None:
        self._conns.pop(sid, None)
