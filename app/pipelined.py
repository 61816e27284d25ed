"""A Lua script run for many callers at once: the calls made in one step of the event loop
go to Redis together, as one pipeline.

redis-py spends far more CPU on each call (a pooled connection checked out, a timeout armed,
one write and one read) than Redis spends running a short script: on the completion path
that overhead was a quarter of the server's CPU. In a pipeline those costs are paid once
for all the calls gathered (about a third of the CPU per call at ten calls).

A call may bring one more command (`then`, e.g. a read of a key in another hash slot), sent
right after its script in the same pipeline; its reply is then [script's, command's].

Each caller still gets its own reply, or its own error: a failed pipeline (Redis away, a
timeout) raises its error in every caller, as each separate call would have, and the callers'
fallbacks (the breaker, the local limits, the backlog) work as before. Calls are never
merged or reordered: Redis runs them one after another, in the order they were made. After a
NOSCRIPT the script is loaded again and those calls are rerun (with their `then`): a script
run this way must be safe to run twice. A Redis Cluster takes no scripts in a pipeline: there
each call goes out on its own, as it did before.

`run_each` is the same for one caller with many calls (a flush's board families on a
cluster, an erasure's boards); both send through `run_all`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

Arg = str | bytes | int | float
# keys, args, the command to send after it (or None)
ScriptCall = tuple[Sequence[Arg], Sequence[Arg], "Sequence[Arg] | None"]
# ... and its caller's answer
Call = tuple[Sequence[Arg], Sequence[Arg], "Sequence[Arg] | None", "asyncio.Future[Any]"]


class PipelinedScript:
    def __init__(self, redis: Redis, script: AsyncScript) -> None:
        """`script`: registered on `redis` (app/lua.py register)."""
        self._redis = redis
        self._script = script
        self._waiting: list[Call] = []
        self._sending: set[asyncio.Task] = set()  # referenced until done (the loop keeps only weak ones)

    async def __call__(self, keys: Sequence[Arg], args: Sequence[Arg], then: Sequence[Arg] | None = None) -> Any:
        if isinstance(self._redis, RedisCluster):
            if then is None:
                return await self._script(keys=keys, args=args)
            return list(await asyncio.gather(self._script(keys=keys, args=args), self._redis.execute_command(*then)))
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._waiting:
            # After the callbacks ready now have run: the calls they make join this pipeline.
            loop.call_soon(self._send_waiting)
        self._waiting.append((keys, args, then, future))
        return await future

    def _send_waiting(self) -> None:
        calls, self._waiting = self._waiting, []
        task = asyncio.ensure_future(self._send(calls))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, calls: list[Call]) -> None:
        try:
            answers = await run_all(self._redis, self._script, [(keys, args, then) for keys, args, then, _ in calls])
            for (*_, future), answer in zip(calls, answers, strict=True):
                _answer(future, answer)
        except asyncio.CancelledError:
            for *_, future in calls:
                future.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - the callers' own handlers decide what it means
            for *_, future in calls:
                if not future.done():
                    future.set_exception(exc)


async def run_each(redis: Redis, script: AsyncScript, calls: Sequence[tuple[Sequence[Arg], Sequence[Arg]]]) -> list:
    """`script` once per (keys, args), at once: on one server in one pipeline (run_all), on a
    Redis Cluster each to its slot's node; the replies in order, or the first error raised."""
    if isinstance(redis, RedisCluster):
        return list(await asyncio.gather(*(script(keys=keys, args=args) for keys, args in calls)))
    answers = await run_all(redis, script, [(keys, args, None) for keys, args in calls])
    for answer in answers:
        if isinstance(answer, Exception):
            raise answer
    return answers


async def run_all(redis: Redis, script: AsyncScript, calls: Sequence[ScriptCall]) -> list[Any]:
    """`script` (registered on `redis`: app/lua.py) once per (keys, args, then) in one pipeline
    on one server: EVALSHA, then the call's own command `then` if any. Each call's answer in
    order: its reply ([script's, command's] with a `then`), or its error, returned, not raised
    (the first of the two with a `then`). Calls that met NOSCRIPT (Redis restarted, or its
    scripts flushed) are rerun once the script is loaded again: a script run this way must be
    safe to run twice. redis-py's own pipelined scripts would ask SCRIPT EXISTS first, each
    time: one more round trip."""
    answers = await _pipeline(redis, script, calls)
    again = [i for i, answer in enumerate(answers) if isinstance(answer, NoScriptError)]
    if again:
        script.sha = await redis.script_load(script.script)
        rerun = await _pipeline(redis, script, [calls[i] for i in again])
        for i, answer in zip(again, rerun, strict=True):
            answers[i] = answer
    return answers


async def _pipeline(redis: Redis, script: AsyncScript, calls: Sequence[ScriptCall]) -> list[Any]:
    async with redis.pipeline(transaction=False) as pipe:
        for keys, args, then in calls:
            pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
            if then is not None:
                pipe.execute_command(*then)
        replies = await pipe.execute(raise_on_error=False)
    answers, i = [], 0
    for _, _, then in calls:
        if then is None:
            answers.append(replies[i])
            i += 1
        else:  # the command's error, if any, is the caller's too
            error = next((r for r in replies[i:i + 2] if isinstance(r, Exception)), None)
            answers.append(error if error is not None else replies[i:i + 2])
            i += 2
    return answers


def _answer(future: asyncio.Future[Any], reply: Any) -> None:
    if future.done():  # its caller was cancelled meanwhile
        return
    if isinstance(reply, Exception):
        future.set_exception(reply)
    else:
        future.set_result(reply)
