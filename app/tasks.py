"""Stopping background loops, bounded.

A cancel that lands inside a driver call can be absorbed there (PyMongo's and redis-py's
async code catch and retry around their own awaits), and a loop written as `while True`
then runs on while its owner waits for it forever: a test server's teardown was seen to
hang that way. Loops check `stopping()`, and owners stop them with `stop_task`, which
cancels again and gives up after a bound.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 5.0


def stopping() -> bool:
    """True once the running task was asked to stop, even if a callee swallowed the cancel."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def stop_task(task: asyncio.Task | None, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """Cancel `task` and wait for it, at most `timeout_s`; a loop that will not stop is left behind."""
    if task is None or task.done():
        return
    for _ in range(3):
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=timeout_s / 3)
        if done:
            with suppress(asyncio.CancelledError, Exception):
                task.result()
            return
    log.warning("background task %s did not stop in time; going on", task.get_name())
