"""Live figures for the operator console (GET /api/v1/admin/stats), summed over every instance.

Each instance keeps, in memory, its completions per second by outcome over the last WINDOW_S
seconds: once a second it reads how far its own completion counter (the Prometheus one,
`scoreboard_actions_total`) has moved and files the difference under that second, so a
completion costs nothing here and Redis sees one write a second per instance, whatever the
traffic. It publishes that window with its connections by role and transport as one key
(SNAPSHOT_PREFIX + instance, expiring after LIVE_S) and its name in INSTANCES_KEY (scored by
when it last published). The route reads the instances seen within LIVE_S and sums them: an
instance that died drops out within LIVE_S.

Outcomes: "credited" is a completion credited now; a retry answered from the stored ack
("duplicate") is neither credited again nor refused, and is not counted; every other outcome
is the refusal's error code.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from contextlib import suppress

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.clock import iso, now_ms
from app.leaderboard.keys import INSTANCES_KEY, STATS_PREFIX
from app.tasks import stop_task, stopping

log = logging.getLogger(__name__)

WINDOW_S = 300
LIVE_S = 10
PUBLISH_S = 1.0
SNAPSHOT_PREFIX = STATS_PREFIX
ROLES = ("player", "spectator")
TRANSPORTS = ("websocket", "polling")

Connections = dict[str, dict[str, int]]


def counter_values(counter: Counter) -> dict[str, float]:
    """A counter labelled by one label: label value -> its running total."""
    out: dict[str, float] = {}
    for family in counter.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                out[next(iter(sample.labels.values()), "")] = sample.value
    return out


def no_connections() -> Connections:
    return {role: dict.fromkeys(TRANSPORTS, 0) for role in ROLES}


class LiveStats:
    def __init__(self, redis: Redis, instance: str, *, outcomes: Callable[[], dict[str, float]],
                 connections: Callable[[], Awaitable[Connections]], clock: Callable[[], int] = now_ms,
                 window_s: int = WINDOW_S) -> None:
        """`outcomes()`: the running totals of completions by outcome on this instance;
        `connections()`: this instance's open connections by role and transport."""
        self.instance = instance
        self._redis = redis
        self._outcomes = outcomes
        self._connections = connections
        self._clock = clock
        self._window_s = window_s
        self._last = dict(outcomes())
        # second -> {outcome: count}, oldest first, at most window_s seconds.
        self._seconds: OrderedDict[int, dict[str, int]] = OrderedDict()
        self._live: Connections = no_connections()
        self._task: asyncio.Task | None = None

    def sample(self) -> None:
        """File what the counter gained since the last sample under the current second."""
        now_s = self._clock() // 1000
        current = self._outcomes()
        gained = {k: int(v - self._last.get(k, 0.0)) for k, v in current.items() if v > self._last.get(k, 0.0)}
        self._last = dict(current)
        gained.pop("duplicate", None)
        if gained:
            bucket = self._seconds.setdefault(now_s, {})
            for outcome, n in gained.items():
                bucket[outcome] = bucket.get(outcome, 0) + n
        while self._seconds and next(iter(self._seconds)) <= now_s - self._window_s:
            self._seconds.popitem(last=False)

    def snapshot(self) -> dict:
        """This instance's figures as published."""
        return {"instance": self.instance, "at_ms": self._clock(),
                "completions": [[t, counts] for t, counts in self._seconds.items()], "connections": self._live}

    async def publish(self) -> None:
        self.sample()
        self._live = await self._connections()
        now = self._clock()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(SNAPSHOT_PREFIX + self.instance, json.dumps(self.snapshot()), px=LIVE_S * 1000)
            pipe.zadd(INSTANCES_KEY, {self.instance: now})
            pipe.zremrangebyscore(INSTANCES_KEY, "-inf", now - 6 * LIVE_S * 1000)
            await pipe.execute()

    async def gather(self) -> dict:
        """Every live instance's figures, summed: completions per second (oldest first, seconds
        with nothing left out), connections by role and transport, and the instances seen."""
        now = self._clock()
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in
                 await self._redis.zrangebyscore(INSTANCES_KEY, now - LIVE_S * 1000, "+inf")]
        others = [n for n in names if n != self.instance]
        raws = await self._redis.mget([SNAPSHOT_PREFIX + n for n in others]) if others else []
        self.sample()
        snapshots = [self.snapshot()]  # this instance's own from memory: up to the moment
        for raw in raws:
            if raw is not None:
                with suppress(ValueError, TypeError):
                    snapshots.append(json.loads(raw))
        since_s = now // 1000 - self._window_s
        seconds: dict[int, dict[str, int]] = {}
        connections = no_connections()
        instances = []
        for snap in snapshots:
            instances.append(snap["instance"])
            for t, counts in snap.get("completions", []):
                if t <= since_s:
                    continue
                bucket = seconds.setdefault(int(t), {})
                for outcome, n in counts.items():
                    bucket[outcome] = bucket.get(outcome, 0) + int(n)
            for role, by_transport in (snap.get("connections") or {}).items():
                for transport, n in by_transport.items():
                    if role in connections and transport in connections[role]:
                        connections[role][transport] += int(n)
        completions = []
        for t in sorted(seconds):
            counts = dict(seconds[t])
            credited = counts.pop("credited", 0)
            completions.append({"t": iso(t * 1000), "credited": credited, "refused": counts})
        return {"window_s": self._window_s, "instance": self.instance, "completions": completions,
                "connections": connections, "instances": sorted(set(instances))}

    async def run(self) -> None:
        failing = False
        while not stopping():
            try:
                await self.publish()
            except (RedisError, OSError) as exc:
                if not failing:
                    log.warning("stats: could not publish this instance's figures: %s", exc)
                failing = True
            except Exception:  # noqa: BLE001 - a failed publish is retried at the next tick
                log.exception("stats: publish failed")
            else:
                failing = False
            await asyncio.sleep(PUBLISH_S)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="stats-publisher")

    async def stop(self) -> None:
        if self._task is not None:
            await stop_task(self._task)
            self._task = None
        with suppress(RedisError, OSError):
            async with self._redis.pipeline(transaction=False) as pipe:  # gone from the console at once
                pipe.delete(SNAPSHOT_PREFIX + self.instance)
                pipe.zrem(INSTANCES_KEY, self.instance)
                await pipe.execute()
