"""Per-address limit on the public HTTP reads: profiles, leaderboards (PROTOCOL.md 2).

Counted per instance, in memory, like the other per-IP limits (app/abuse/peers.py): it
holds during a Redis outage, and behind a balancer that spreads one address over N
instances a client gets at most N times the rate. Memory is bounded by BucketsByKey.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from app.abuse.buckets import BucketsByKey


class ReadLimits:
    """`per_s` reads a second per address, in bursts of up to `burst`; `per_s` 0: no limit."""

    def __init__(self, per_s: int, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._buckets = BucketsByKey(per_s, burst, clock=clock) if per_s else None

    def wait_ms(self, ip: str) -> int:
        """Take one read for `ip`: 0 when it may read now, else the milliseconds until it may."""
        return self._buckets.take(ip) if self._buckets is not None else 0
