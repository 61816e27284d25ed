"""Fail fast on a Redis that stopped answering, wherever the caller can do without it.

A Redis that refuses connections answers at once, but one that hangs (paused, a
partition) costs STORE_TIMEOUT_MS per call, and a completion makes several such calls
(suspension check, queue append, rank, announcement). After one fails, the others are
skipped for a cool-down: the completion is credited in MongoDB and acknowledged
without waiting on Redis, and the queue's backlog catches the read model up later.
"""

from __future__ import annotations

import time
from collections.abc import Callable

COOLDOWN_S = 2.0


class Breaker:
    def __init__(self, cooldown_s: float = COOLDOWN_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._until = 0.0

    def ready(self) -> bool:
        """False while cooling down after a failure: skip Redis, take the fallback."""
        return self._clock() >= self._until

    def trip(self) -> None:
        self._until = self._clock() + self._cooldown_s
