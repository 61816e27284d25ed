"""Several instances as separate processes on one Redis and one MongoDB-wire server:
one delta per room per interval in total, consecutive seqs, every credited point shown
exactly once, the same reads everywhere; and a kill -9 of the lease holder mid-traffic."""

from __future__ import annotations

import redis.asyncio

from tests.support import cluster_run, kill_9_run


async def test_two_instances_act_as_one(instances, settings):
    await cluster_run(instances, settings, 2)


async def test_three_instances_act_as_one(instances, settings):
    await cluster_run(instances, settings, 3)


async def test_kill_9_of_the_lease_holder_mid_traffic(instances, settings, redis_proc):
    r = redis.asyncio.Redis.from_url(redis_proc.url)
    try:
        await kill_9_run(instances, settings, r)
    finally:
        await r.aclose()
