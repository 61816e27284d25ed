"""Group commit: callers submit one item each; a worker writes whatever has gathered in
one round trip, and each caller is answered only after the write that holds its item.

Under light load a batch is one item and costs no wait; under heavy load the journal
is paid once per batch instead of once per completion.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Generic, TypeVar

from app.scores.repository import CreditOutcome, CreditRecord, ScoreRepository

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    def __init__(self, write: Callable[[list[T]], Awaitable[list[R]]], max_batch: int = 256) -> None:
        self._write = write
        self._max = max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="batcher")

    async def stop(self) -> None:
        """Write what was submitted, then stop."""
        if self._task is None:
            return
        while self._pending:
            await asyncio.sleep(0.01)
        self._task.cancel()
        with suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def submit(self, item: T) -> R:
        if self._task is None or self._task.done():
            return (await self._write([item]))[0]
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        self._wake.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, self._pending = self._pending[: self._max], self._pending[self._max :]
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
                for (_, future), result in zip(batch, results):
                    if not future.done():
                        future.set_result(result)


class BatchedCredits:
    """The credit path of ScoreRepository, group-committed: many completions per round trip."""

    def __init__(self, repo: ScoreRepository, max_batch: int = 256) -> None:
        self._credits: Batcher[CreditRecord, CreditOutcome] = Batcher(repo.credit_many, max_batch)
        self._acks: Batcher[tuple[str, dict], dict] = Batcher(repo.finish_many, max_batch)

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
