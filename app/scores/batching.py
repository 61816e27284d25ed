"""Group commit: callers submit one item each; a worker writes whatever has gathered in
one round trip, and each caller is answered only after the write that holds its item.

Under light load a batch is one item and costs no wait; under heavy load the journal
is paid once per batch instead of once per completion. The queue is bounded twice: an
item past `max_pending` is refused at once, and an item that waited longer than
`max_wait_s` (the store timeout) is answered `unavailable` without being written, so
a slow store turns into quick refusals, never into a queue that grows without end.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Generic, TypeVar

from app.clock import now_ms
from app.errors import ProtocolError
from app.scores.repository import CreditOutcome, CreditRecord, ScoreRepository
from app.tasks import stop_task, stopping

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

MAX_PENDING = 4096
STOP_WAIT_S = 10.0  # on shutdown, for what was submitted to be written


def overloaded() -> ProtocolError:
    return ProtocolError("unavailable", "the score store is too busy; retry later")


class Batcher(Generic[T, R]):
    def __init__(self, write: Callable[[list[T]], Awaitable[list[R]]], max_batch: int = 256,
                 max_pending: int = MAX_PENDING, max_wait_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._write = write
        self._max = max_batch
        self._max_pending = max_pending
        self._max_wait_s = max_wait_s
        self._clock = clock
        self._pending: deque[tuple[T, asyncio.Future[R], float]] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()  # set whenever nothing is waiting to be written
        self._idle.set()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="batcher")

    async def stop(self) -> None:
        """Write what was submitted, then stop."""
        if self._task is None:
            return
        with suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), STOP_WAIT_S)
        await stop_task(self._task)
        self._task = None

    @property
    def depth(self) -> int:
        return len(self._pending)

    async def submit(self, item: T) -> R:
        if self._task is None or self._task.done():
            return (await self._write([item]))[0]
        if len(self._pending) >= self._max_pending:
            raise overloaded()
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future, self._clock()))
        self._idle.clear()
        self._wake.set()
        return await future

    def _take(self) -> list[tuple[T, asyncio.Future[R]]]:
        """The next batch; items that waited too long, or whose caller left, are dropped."""
        batch: list[tuple[T, asyncio.Future[R]]] = []
        stale_before = self._clock() - self._max_wait_s
        while self._pending and len(batch) < self._max:
            item, future, queued = self._pending.popleft()
            if future.done():
                continue
            if queued < stale_before:
                future.set_exception(overloaded())
                continue
            batch.append((item, future))
        return batch

    async def _run(self) -> None:
        while not stopping():
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = self._take()
                if not batch:
                    continue
                try:
                    results = await self._write([item for item, _ in batch])
                except asyncio.CancelledError:
                    for _, future in batch:
                        future.cancel()
                    raise
                except Exception as exc:  # noqa: BLE001 - every caller of the batch gets the failure
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
            self._idle.set()


class BatchedCredits:
    """The credit path of ScoreRepository, group-committed: many completions per round trip."""

    def __init__(self, repo: ScoreRepository, max_batch: int = 256, max_wait_s: float = 5.0,
                 clock: Callable[[], int] = now_ms) -> None:
        async def finish_many(items: list[tuple[str, dict]]) -> list[dict]:
            return await repo.finish_many(items, clock())

        self._credits: Batcher[CreditRecord, CreditOutcome] = Batcher(repo.credit_many, max_batch,
                                                                       max_wait_s=max_wait_s)
        self._acks: Batcher[tuple[str, dict], dict] = Batcher(finish_many, max_batch, max_wait_s=max_wait_s)

    @property
    def depth(self) -> int:
        return self._credits.depth + self._acks.depth

    def start(self) -> None:
        self._credits.start()
        self._acks.start()

    async def stop(self) -> None:
        await self._credits.stop()
        await self._acks.stop()

    async def credit(self, rec: CreditRecord) -> CreditOutcome:
        return await self._credits.submit(rec)

    async def finish(self, action_id: str, ack: dict) -> dict:
        return await self._acks.submit((action_id, ack))
