"""Graceful drain: a stopping instance finishes the work it took and takes no more.

Socket events run as tasks of their own, outside any HTTP request that aiohttp's
shutdown would wait for, so the instance counts them itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from app.errors import ProtocolError

RETRY_AFTER_MS = 1000


class Drain:
    def __init__(self) -> None:
        self.draining = False
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def busy(self) -> int:
        return self._busy

    async def serving(self) -> None:
        """A readiness probe: fails while draining."""
        if self.draining:
            raise RuntimeError("draining for shutdown")

    def refuse_new_work(self) -> None:
        """Raise `unavailable` once draining: the client retries on another instance."""
        if self.draining:
            raise ProtocolError("unavailable", "this server is shutting down; reconnect and retry",
                                retry_after_ms=RETRY_AFTER_MS)

    @contextmanager
    def tracked(self) -> Iterator[None]:
        """Around one event, its ack included: the drain waits until none is left."""
        self._busy += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._busy -= 1
            if not self._busy:
                self._idle.set()

    async def begin(self, timeout_s: float) -> bool:
        """Refuse new work, then wait for what is in flight; False when time ran out."""
        self.draining = True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
            return True
        except TimeoutError:
            return False
