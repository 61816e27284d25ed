"""GET /api/v1/admin/stats: the console's live figures, summed over every live instance:
completions per second (credited, refused by code), connections by role and transport, the
flush lease holder and the queue depth."""

from __future__ import annotations

from datetime import UTC, datetime

import redis.asyncio

from app.operators.stats import LiveStats, no_connections
from tests.operators.test_audit_route import refused_attempt
from tests.support import OPERATOR_KEY, Operator, create_session, eventually, open_client


def parse(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def totals(stats: dict) -> tuple[int, dict[str, int]]:
    credited = 0
    refused: dict[str, int] = {}
    for second in stats["completions"]:
        credited += second["credited"]
        for code, n in second["refused"].items():
            refused[code] = refused.get(code, 0) + n
    return credited, refused


async def test_stats_shape_and_a_credited_completion_shows_up(operator: Operator, player, app_url):
    _, client = await player()
    spectator = await open_client(app_url, transports=["polling"])  # a spectator on long-polling
    try:
        await check_shape(operator, client)
    finally:
        # python-engineio's polling client waits out its pending long-poll on a plain disconnect.
        await spectator.sio.eio.disconnect(abort=True)


async def check_shape(operator: Operator, client) -> None:
    for _ in range(2):
        assert (await client.play())[1]["ok"]
    await refused_attempt(client)

    async def counted() -> dict:
        stats = await operator.ok("GET", "/api/v1/admin/stats")
        assert totals(stats) == (2, {"proof_invalid": 1}), stats
        assert stats["connections"] == {"player": {"websocket": 1, "polling": 0},
                                        "spectator": {"websocket": 0, "polling": 1}}, stats
        return stats

    stats = await eventually(counted)
    assert set(stats) == {"at", "window_s", "instance", "completions", "connections", "lease_holder",
                          "queue_depth", "instances"}
    assert stats["window_s"] == 300 and stats["instances"] == [stats["instance"]]
    assert stats["lease_holder"] == stats["instance"] and isinstance(stats["queue_depth"], int)
    now = parse(stats["at"])
    seconds = [parse(s["t"]) for s in stats["completions"]]
    assert seconds == sorted(seconds) and len(set(seconds)) == len(seconds)
    assert all(s.microsecond == 0 and 0 <= (now - s).total_seconds() <= 300 for s in seconds)
    assert now.tzinfo == UTC


async def test_stats_sum_every_live_instance(instances, http):
    a, b = await instances(API_KEY=OPERATOR_KEY), await instances(API_KEY=OPERATOR_KEY)
    clients = []
    try:
        for url, plays in ((a.url, 1), (b.url, 2)):
            session = await create_session(http, url)
            client = await open_client(url, session["token"])
            clients.append(client)
            for _ in range(plays):
                assert (await client.play())[1]["ok"]
        operator = Operator(http, a.url)

        async def summed() -> dict:
            stats = await operator.ok("GET", "/api/v1/admin/stats")
            assert len(stats["instances"]) == 2 and totals(stats) == (3, {}), stats
            assert stats["connections"]["player"]["websocket"] == 2, stats
            return stats

        stats = await eventually(summed)
        assert stats["lease_holder"] in stats["instances"]
        # An instance that stops drops out of the figures.
        b.stop()

        async def one_left() -> None:
            stats = await operator.ok("GET", "/api/v1/admin/stats")
            assert stats["instances"] == [stats["instance"]], stats

        await eventually(one_left, timeout=15)
    finally:
        for client in clients:
            if client.sio.connected:
                await client.sio.disconnect()


async def test_the_window_keeps_the_last_five_minutes_per_second_and_skips_retries(redis_proc):
    """The per-second buckets, on a turned clock: what the counter gained between two samples
    is filed under the second of the later one; older than the window is dropped."""
    counter = {"credited": 0.0, "duplicate": 0.0}
    clock = [1_000_000_000_000]

    async def connections():
        return no_connections()

    client = redis.asyncio.Redis.from_url(redis_proc.url)
    try:
        live = LiveStats(client, "i-1", outcomes=lambda: dict(counter), connections=connections,
                         clock=lambda: clock[0])
        counter.update(credited=3.0, duplicate=2.0, too_fast=1.0)
        live.sample()
        clock[0] += 1500
        counter["credited"] += 1
        live.sample()
        live.sample()  # nothing new: nothing filed
        assert live.snapshot()["completions"] == [[1_000_000_000, {"credited": 3, "too_fast": 1}],
                                                  [1_000_000_001, {"credited": 1}]]
        clock[0] += 300_000
        counter["credited"] += 5
        live.sample()
        assert live.snapshot()["completions"] == [[1_000_000_301, {"credited": 5}]]
        await live.publish()
        stats = await live.gather()
        assert stats["completions"] == [{"t": "2001-09-09T01:51:41.000Z", "credited": 5, "refused": {}}]
        assert stats["instances"] == ["i-1"]
    finally:
        await client.aclose()
