"""A Lua script run for many callers in one pipeline (app/pipelined.py), against the tests'
real redis-server: each caller gets its own reply or its own error, in the order of the calls;
and one caller's many calls (run_each) in one pipeline, the first error raised."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError, ResponseError

from app.embedded import free_port
from app.pipelined import PipelinedScript, run_each

# KEYS[1] a list; ARGV[1] a value to push, or "boom" to fail. Returns the list's new length.
PUSH = """
if ARGV[1] == 'boom' then return redis.error_reply('boom') end
return redis.call('RPUSH', KEYS[1], ARGV[1])
"""


async def test_calls_made_together_each_get_their_own_reply_in_order(redis_client: Redis) -> None:
    push = PipelinedScript(redis_client, redis_client.register_script(PUSH))
    replies = await asyncio.gather(*(push(["l"], [str(i)]) for i in range(20)))
    assert replies == list(range(1, 21))
    assert await redis_client.lrange("l", 0, -1) == [str(i).encode() for i in range(20)]


async def test_a_failing_call_fails_alone(redis_client: Redis) -> None:
    push = PipelinedScript(redis_client, redis_client.register_script(PUSH))
    replies = await asyncio.gather(push(["l"], ["a"]), push(["l"], ["boom"]), push(["l"], ["b"]),
                                   return_exceptions=True)
    assert replies[0] == 1 and replies[2] == 2
    assert isinstance(replies[1], ResponseError) and "boom" in str(replies[1])


async def test_a_command_after_the_script_answers_beside_it(redis_client: Redis) -> None:
    push = PipelinedScript(redis_client, redis_client.register_script(PUSH))
    await redis_client.set("other", "x")
    assert await asyncio.gather(push(["l"], ["a"], then=("STRLEN", "other")), push(["l"], ["b"])) == [[1, 1], 2]


async def test_the_script_is_loaded_again_after_a_flush(redis_client: Redis) -> None:
    push = PipelinedScript(redis_client, redis_client.register_script(PUSH))
    assert await push(["l"], ["a"]) == 1
    await redis_client.script_flush()
    assert await asyncio.gather(push(["l"], ["b"]), push(["l"], ["c"], then=("LLEN", "l"))) == [2, [3, 3]]


async def test_every_caller_gets_the_error_while_redis_is_away() -> None:
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    push = PipelinedScript(dead, dead.register_script(PUSH))
    try:
        replies = await asyncio.gather(*(push(["l"], [str(i)]) for i in range(3)), return_exceptions=True)
        assert all(isinstance(r, (RedisConnectionError, OSError)) for r in replies), replies
    finally:
        await dead.aclose()


async def test_a_caller_cancelled_meanwhile_leaves_the_others_their_replies(redis_client: Redis) -> None:
    push = PipelinedScript(redis_client, redis_client.register_script(PUSH))
    first = asyncio.ensure_future(push(["l"], ["a"]))
    second = asyncio.ensure_future(push(["l"], ["b"]))
    await asyncio.sleep(0)
    first.cancel()
    assert await second in (1, 2)  # its reply; the cancelled call may have been sent already
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_one_callers_calls_in_one_pipeline_reloaded_after_a_flush(redis_client: Redis) -> None:
    script = redis_client.register_script(PUSH)
    assert await run_each(redis_client, script, [(["l"], ["a"]), (["m"], ["b"]), (["l"], ["c"])]) == [1, 1, 2]
    await redis_client.script_flush()
    assert await run_each(redis_client, script, [(["l"], ["d"]), (["m"], ["e"])]) == [3, 2]
    with pytest.raises(ResponseError, match="boom"):
        await run_each(redis_client, script, [(["l"], ["f"]), (["l"], ["boom"])])
    assert await redis_client.lrange("l", 0, -1) == [b"a", b"c", b"d", b"f"]  # the calls before it ran
