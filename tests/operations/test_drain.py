"""Graceful shutdown: SIGTERM drains an instance and hands its clients and its lease over.

The document store is paused (SIGSTOP) so that completions are provably in flight when
SIGTERM arrives; it resumes after the instance stopped accepting work.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from dataclasses import replace

import aiohttp
import redis.asyncio
from pymongo import AsyncMongoClient

from app.anticheat.proof import solve
from app.clock import now_ms
from app.leaderboard.boards import BoardStore
from tests.processes import DocumentStoreProcess, Instance
from tests.support import Client, Watcher, create_session, eventually, open_client

DRAIN_TIMEOUT_S = 20


async def player(http: aiohttp.ClientSession, url: str) -> tuple[dict, Client]:
    sess = await create_session(http, url)
    return sess, await open_client(url, sess["token"])


async def challenge(client: Client) -> tuple[str, str]:
    reply = await client.call("action:start", {"action": "quick"})
    assert reply["ok"], reply
    token = reply["challenge"]["token"]
    return token, solve(token, reply["challenge"]["difficulty"])


async def test_sigterm_finishes_in_flight_completions_flushes_and_hands_over(tmp_path, settings, http, node):
    store = DocumentStoreProcess(tmp_path / "store")
    lb = redis.asyncio.Redis.from_url(settings.redis_url)
    mongo = AsyncMongoClient(store.url)
    s = replace(settings, mongodb_url=store.url, flush_ms=1000)
    env = {"STORE_TIMEOUT_MS": "15000", "DRAIN_TIMEOUT_S": str(DRAIN_TIMEOUT_S)}
    a = Instance(s, **env)
    b = None
    clients: list[Client] = []
    watchers: list[Watcher] = []
    kept_alive = None
    try:
        await a.ready()
        watchers = [await Watcher.start(a.url, t, ["region:eu"]) for t in ("websocket", "polling")]
        players = [await player(http, a.url) for _ in range(6)]
        clients = [c for _, c in players]
        for _, c in players:
            assert (await c.play("quick"))[1]["ok"]
        await eventually(lambda: _assert_holder(lb, True), timeout=10)
        kept_alive = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1))
        async with kept_alive.get(f"{a.url}/readyz") as resp:
            assert resp.status == 200
        pending = [await challenge(c) for c in clients]

        # Completions in flight: the store is paused, so each waits inside the instance.
        store.proc.send_signal(signal.SIGSTOP)
        acks = [asyncio.create_task(c.call("action:complete", {"token": t, "proof": p}, timeout=40))
                for c, (t, p) in zip(clients, pending, strict=True)]
        await asyncio.sleep(1.0)
        assert not any(task.done() for task in acks)
        stopped_at = time.monotonic()
        a.proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(1.0)

        # Draining: no new connections; on open ones, new work is refused so that the client
        # retries elsewhere, and readiness fails (for a balancer probing over a kept-alive connection).
        async with aiohttp.ClientSession() as fresh:  # a new connection, not a kept-alive one
            try:
                async with fresh.get(f"{a.url}/healthz", timeout=aiohttp.ClientTimeout(total=3)) as resp:
                    raise AssertionError(f"a draining instance accepted a connection: {resp.status}")
            except aiohttp.ClientConnectorError:
                pass
        assert all(c.sio.connected for c in clients)  # held open until their completions are answered
        refused = await clients[0].call("action:start", {"action": "quick"})
        assert refused["ok"] is False and refused["error"]["code"] == "unavailable", refused
        async with kept_alive.get(f"{a.url}/readyz") as resp:
            assert resp.status == 503 and (await resp.json())["checks"]["instance"] == "down"

        store.proc.send_signal(signal.SIGCONT)
        replies = await asyncio.gather(*acks)
        for reply in replies:
            assert reply["ok"] and reply["duplicate"] is False and reply["score"]["total"] == 20, reply

        assert await asyncio.to_thread(a.proc.wait, DRAIN_TIMEOUT_S + 15) == 0
        assert time.monotonic() - stopped_at < DRAIN_TIMEOUT_S + 10

        # Lease given up at once (it would otherwise expire 2 s later), the queue flushed.
        assert await lb.get("lb:lease") is None
        assert await lb.xlen("lb:queue") == 0
        rows, count = await BoardStore(lb).page("global", "all", 0, 100, now_ms())
        assert count == 6 and {r["score"] for r in rows} == {20}
        db = mongo[s.mongodb_db]
        assert await db["actions"].count_documents({}) == 12

        # Clients reconnect by themselves to the instance that takes the address over.
        b = Instance(s, port=a.port, **env)
        await b.ready()
        sess, newcomer = await player(http, b.url)
        clients.append(newcomer)
        for _ in range(3):
            assert (await newcomer.play("quick"))[1]["ok"]
        await asyncio.sleep(2.5)  # two flush intervals on b
        results = [await w.result() for w in watchers]
        watchers = []
        for result in results:
            assert result["connects"] == 2, result
            # A transport close, not "io server disconnect" (after which a client stays away).
            assert result["disconnects"] and all(r.startswith("transport") for r in result["disconnects"]), result
            board = {row["player_id"]: row["score"] for row in result["boards"]["region:eu"]["all"]}
            assert board[sess["player"]["player_id"]] == 30, result
            assert sum(1 for score in board.values() if score == 20) == 6, result
    finally:
        for c in clients:
            if c.sio.connected:
                await c.sio.disconnect()
        for w in watchers:
            w.proc.kill()
        if kept_alive:
            await kept_alive.close()
        if store.proc and store.proc.poll() is None:
            os.kill(store.proc.pid, signal.SIGCONT)
        a.stop()
        if b:
            b.stop()
        store.stop()
        await lb.aclose()
        await mongo.close()


async def _assert_holder(lb: redis.asyncio.Redis, held: bool) -> None:
    assert (await lb.get("lb:lease") is not None) is held
