"""Lua scripts kept in `.lua` files beside the module that runs them.

Each file starts with a comment naming its KEYS and ARGV. The text is read once, when the
store that uses it is built (inside create_app's cleanup contexts, never at import), and
registered with redis-py, which runs it by SHA and reloads it after a SCRIPT FLUSH.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError


@cache
def source(module_file: str, name: str) -> str:
    """The text of `name` in the folder of `module_file` (pass `__file__`)."""
    return (Path(module_file).resolve().parent / name).read_text(encoding="utf-8")


def register(redis: Redis, module_file: str, name: str) -> AsyncScript:
    return redis.register_script(source(module_file, name))


async def run_each(redis: Redis, script: AsyncScript, calls: list[tuple[list[str], list]],
                   then: Callable[[Any], object] | None = None) -> list:
    """`script` run once per (keys, args), in one pipeline: one round trip; `then` adds other
    commands to the pipeline, whose replies follow the script's. redis-py refuses scripts in a
    Redis Cluster's pipeline: there the calls go out at once, each to its slot's node (each
    loads the script where it is missing), and `then`'s commands in a pipeline beside them.
    A call may be redone after a NOSCRIPT: every script run this way is idempotent."""
    if isinstance(redis, RedisCluster):
        async def others() -> list:
            if then is None:
                return []
            async with redis.pipeline(transaction=False) as pipe:
                then(pipe)
                return await pipe.execute()

        *replies, rest = await asyncio.gather(*(script(keys=keys, args=args) for keys, args in calls), others())
        return [*replies, *rest]
    for attempt in range(2):
        try:
            async with redis.pipeline(transaction=False) as pipe:
                for keys, args in calls:
                    await script(keys=keys, args=args, client=pipe)
                if then is not None:
                    then(pipe)
                return await pipe.execute()
        except NoScriptError:
            if attempt:
                raise
            await redis.script_load(script.script)
    raise AssertionError("unreachable")
