"""SendQueue (app/engine.py) behaves as the asyncio.Queue engine.io was written against: in order,
a waiting get woken by a put, a cancelled get leaves nothing behind, join waits for task_done."""

from __future__ import annotations

import asyncio

import pytest

from app.engine import SendQueue


async def test_items_come_out_in_order_and_a_waiting_get_is_woken() -> None:
    queue = SendQueue()
    waiting = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("a")
    await queue.put("b")
    assert await asyncio.wait_for(waiting, 1) == "a"
    assert queue.qsize() == 1 and not queue.empty()
    assert queue.get_nowait() == "b"
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()


async def test_a_get_that_times_out_leaves_the_next_one_its_item() -> None:
    """engine.io's long-poll waits through wait_for: the cancelled getter must not swallow a put."""
    queue = SendQueue()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(queue.get(), 0.01)
    queue.put_nowait("x")
    assert await asyncio.wait_for(queue.get(), 1) == "x"


async def test_a_getter_woken_and_then_cancelled_passes_the_item_on() -> None:
    queue = SendQueue()
    first = asyncio.ensure_future(queue.get())
    second = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("only")
    first.cancel()  # woken (its future has a result) but cancelled before it ran
    assert await asyncio.wait_for(second, 1) == "only"
    assert first.cancelled()


async def test_join_waits_until_every_item_is_done() -> None:
    queue = SendQueue()
    await asyncio.wait_for(queue.join(), 1)  # nothing unfinished: at once
    queue.put_nowait(1)
    queue.put_nowait(2)
    joined = asyncio.ensure_future(queue.join())
    await asyncio.sleep(0.01)
    assert not joined.done()
    queue.get_nowait()
    queue.task_done()
    await asyncio.sleep(0.01)
    assert not joined.done() and queue._unfinished_tasks == 1
    queue.get_nowait()
    queue.task_done()
    await asyncio.wait_for(joined, 1)
    with pytest.raises(ValueError):
        queue.task_done()
