"""Lua scripts kept in `.lua` files beside the module that runs them.

Each file starts with a comment naming its KEYS and ARGV. The text is read once, when the
store that uses it is built (inside create_app's cleanup contexts, never at import), and
registered with redis-py, which runs it by SHA and reloads it after a SCRIPT FLUSH (and
app/pipelined.py sends many calls of one at once).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from redis.asyncio import Redis
from redis.commands.core import AsyncScript


@cache
def source(module_file: str, name: str) -> str:
    """The text of `name` in the folder of `module_file` (pass `__file__`)."""
    return (Path(module_file).resolve().parent / name).read_text(encoding="utf-8")


def register(redis: Redis, module_file: str, name: str) -> AsyncScript:
    return redis.register_script(source(module_file, name))
