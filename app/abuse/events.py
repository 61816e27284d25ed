"""The per-connection event limit: a socket that sends faster than its bucket refills is
answered `rate_limited`; one that goes on flooding is disconnected."""

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
    __slots__ = ("bucket", "refused", "flooded")

    def __init__(self, bucket: TokenBucket) -> None:
        self.bucket = bucket
        self.refused: deque[float] = deque()
        self.flooded = False


class EventGuard:
    """`per_s` events a second with bursts of `burst`. More than `burst` refusals within
    FLOOD_WINDOW_S make a flood, reported once per connection: a client that honours
    `retry_after_ms` never gets there."""

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
        refused = conn.refused
        refused.append(now)
        while refused and refused[0] < now - FLOOD_WINDOW_S:
            refused.popleft()
        flood = not conn.flooded and len(refused) > self._burst
        conn.flooded = conn.flooded or flood
        return Verdict(wait_ms, flood=flood)

    def forget(self, sid: str) -> None:
        self._conns.pop(sid, None)
