"""Group commit admission: the queue in front of the store is bounded, and an item that waited
longer than the store timeout is refused unwritten (the client retries), never written late."""

from __future__ import annotations

import asyncio

import pytest

from app.errors import ProtocolError
from app.scores.batching import Batcher


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class GatedWrite:
    """A writer that holds each batch until the test opens the gate, and records what it wrote."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.written: list[list[int]] = []

    async def __call__(self, items: list[int]) -> list[int]:
        await self.gate.wait()
        self.written.append(items)
        return [item * 10 for item in items]


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_an_item_past_the_bound_is_refused_at_once():
    write = GatedWrite()
    batcher: Batcher[int, int] = Batcher(write, max_batch=2, max_pending=3)
    batcher.start()
    try:
        first = asyncio.ensure_future(batcher.submit(0))  # taken by the worker, held at the gate
        await settle()
        queued = [asyncio.ensure_future(batcher.submit(i)) for i in (1, 2, 3)]
        await settle()
        with pytest.raises(ProtocolError) as refused:
            await batcher.submit(4)
        assert refused.value.code == "unavailable"
        write.gate.set()
        assert await first == 0 and [await q for q in queued] == [10, 20, 30]
        assert 4 not in [item for batch in write.written for item in batch]
    finally:
        write.gate.set()
        await batcher.stop()


async def test_an_item_that_waited_past_the_timeout_is_answered_unavailable_and_not_written():
    clock, write = Clock(), GatedWrite()
    batcher: Batcher[int, int] = Batcher(write, max_batch=1, max_wait_s=5.0, clock=clock)
    batcher.start()
    try:
        first = asyncio.ensure_future(batcher.submit(1))
        await settle()
        late = asyncio.ensure_future(batcher.submit(2))
        await settle()
        clock.now += 5.1  # the store held the first batch past the timeout
        write.gate.set()
        assert await first == 10
        with pytest.raises(ProtocolError) as refused:
            await late
        assert refused.value.code == "unavailable"
        assert write.written == [[1]]
        assert await batcher.submit(3) == 30  # and the next one goes through
    finally:
        write.gate.set()
        await batcher.stop()
