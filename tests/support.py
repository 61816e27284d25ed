"""Helpers shared by test modules (fixtures stay in conftest.py; helpers are imported from here)."""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import datetime
from typing import Any

import aiohttp
import pytest
import socketio

from app.anticheat.proof import proof_ok
from app.leaderboard.boards import Standing
from app.leaderboard.keys import LEASE_KEY
from app.leaderboard.periods import DAILY, WEEKLY, PeriodPoints, Totals
from tests.conftest import OPERATOR_KEY, Client, Watcher, eventually


def bad_proof(token: str, difficulty: int) -> str:
    """A proof that does not do the work (a fixed junk string passes 1 time in 2**difficulty)."""
    n = 0
    while proof_ok(token, f"x{n}", difficulty):
        n += 1
    return f"x{n}"


async def connect_refusal(url: str, auth: object) -> object:
    """Connect with `auth`, expect a refusal, return what the client's connect_error carried."""
    client = socketio.AsyncClient(reconnection=False)
    seen: list = []
    client.on("connect_error", lambda data: seen.append(data))
    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect(url, auth=auth, transports=["websocket"], wait_timeout=5)
    finally:
        await client.eio.disconnect()  # the refused client closes its engine.io connection
    return seen[0]


def make_standing(player_id: str, name: str, region: str, guild: str | None, version: int, total: int, daily: int,
                  weekly: int, at_ms: int, moves: int = 0, created_ms: int = 0) -> Standing:
    """A standing on the standard period table: all-time, today's and this week's points."""
    totals = Totals(total, (PeriodPoints(DAILY.name, DAILY.period_key(at_ms), daily),
                            PeriodPoints(WEEKLY.name, WEEKLY.period_key(at_ms), weekly)))
    return Standing(player_id, name, region, guild, version, totals, at_ms, moves, created_ms)


OPERATOR_AUTH = {"Authorization": f"Bearer {OPERATOR_KEY}"}


class Operator:
    """An operator's HTTP calls against one app whose API_KEY is OPERATOR_KEY (op_settings)."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http = http
        self.url = url

    async def call(self, method: str, path: str, *, key: bool = True, **kwargs: Any) -> tuple[int, Any]:
        headers = {**(OPERATOR_AUTH if key else {}), **kwargs.pop("headers", {})}
        async with self.http.request(method, f"{self.url}{path}", headers=headers, **kwargs) as resp:
            body = await resp.json() if resp.content_type == "application/json" else await resp.text()
            return resp.status, body

    async def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        status, body = await self.call(method, path, **kwargs)
        assert status == 200, (method, path, status, body)
        return body

    async def board(self, board: str, period: str = "all") -> list[str]:
        body = await self.ok("GET", f"/api/v1/leaderboards/{board}?period={period}&limit=100")
        return [row["player_id"] for row in body["entries"]]

    async def put(self, tid: str, payload: Any, **kwargs: Any) -> tuple[int, Any]:
        return await self.call("PUT", f"/api/v1/tournaments/{tid}", json=payload, **kwargs)


class Spectator:
    """A connection with no auth watching a room; records every delta with its arrival time
    (time.monotonic()) and counts its disconnects."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sio = socketio.AsyncClient(reconnection=False)
        self.deltas: list[tuple[float, dict]] = []
        self.disconnects = 0

        @self.sio.on("leaderboard:delta")
        async def on_delta(data: dict) -> None:
            self.deltas.append((time.monotonic(), data))

        @self.sio.on("disconnect")
        async def on_disconnect(*_: object) -> None:
            self.disconnects += 1

    async def watch(self, room: str) -> dict:
        """Connect and watch `room`; its snapshot."""
        await self.sio.connect(self.url, transports=["websocket"], wait_timeout=10)
        reply = await self.sio.call("watch", {"room": room}, timeout=10)
        assert reply["ok"], reply
        return reply["snapshot"]

    def seqs(self, room: str) -> list[int]:
        """The seqs of `room`'s deltas, in arrival order."""
        return [d["seq"] for _, d in self.deltas if d["room"] == room]

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()


# ---- instances acting as one: run against the tests' Redis and against a Redis Cluster.
# `instances` is conftest's fixture of that name (or one like it), `settings` what they run on.

CLUSTER_ROOMS = ["region:eu", "region:na", "guild:owls"]


async def make_player(http: aiohttp.ClientSession, url: str, pid: str, region: str, guild: str | None) -> Client:
    body = {"player_id": pid, "name": pid.title(), "region": region, **({"guild": guild} if guild else {})}
    async with http.post(f"{url}/api/v1/sessions", json=body) as resp:
        token = (await resp.json())["token"]
    client = Client()
    await client.sio.connect(url, auth={"token": token}, transports=["websocket"])
    return client


async def drive(players: dict[str, Client], rounds: int, pause: float = 0.05) -> dict[str, int]:
    """Each player plays `rounds` actions; returns the points acknowledged per player."""
    acked: dict[str, int] = {pid: 0 for pid in players}

    async def run(pid: str, client: Client) -> None:
        for _ in range(rounds):
            try:
                _, ack = await client.play("quick")
            except Exception:  # noqa: BLE001 - an instance may die under it; unacked is not owed
                continue
            if ack.get("ok") and not ack["duplicate"]:
                acked[pid] += ack["points"]
            await asyncio.sleep(pause)

    await asyncio.gather(*(run(pid, c) for pid, c in players.items()))
    return acked


async def board_of(http: aiohttp.ClientSession, url: str, room: str) -> list[dict]:
    async with http.get(f"{url}/api/v1/leaderboards/{room}", params={"limit": "10"}) as resp:
        return (await resp.json())["entries"]


async def totals_from_profiles(http, url: str, pids) -> dict[str, int]:
    out = {}
    for pid in pids:
        async with http.get(f"{url}/api/v1/players/{pid}") as resp:
            out[pid] = (await resp.json())["score"]["total"]
    return out


def check_deltas(result: dict, flush_ms: int) -> None:
    for room, seen in result["deltas"].items():
        seqs = [d["seq"] for d in seen]
        assert seqs == sorted(set(seqs)), f"{room}: seq repeated or went back: {seqs}"
        ats = [datetime.fromisoformat(d["at"].replace("Z", "+00:00")).timestamp() * 1000 for d in seen]
        gaps = [b - a for a, b in zip(ats, ats[1:], strict=False)]
        assert all(g >= flush_ms * 0.9 for g in gaps), f"{room}: two deltas within one interval: {gaps}"


async def cluster_run(instances, settings, n_instances: int) -> None:
    """`n_instances` play as one: each credit shown once, the same boards everywhere, one delta per
    room per interval in total with consecutive seqs, on websocket and polling watchers alike."""
    nodes = [await instances() for _ in range(n_instances)]
    watchers = []
    for node in nodes:
        for transports in ("websocket", "polling"):
            watchers.append(await Watcher.start(node.url, transports, ["region:eu", "region:na"]))
    async with aiohttp.ClientSession() as http:
        players = {}
        for i in range(6):
            node = nodes[i % n_instances]
            region = "eu" if i % 2 == 0 else "na"
            players[f"p{i}"] = await make_player(http, node.url, f"p{i}", region, "owls" if i < 3 else None)
        acked = await drive(players, rounds=5)
        totals = await totals_from_profiles(http, nodes[0].url, players)
        assert totals == acked and sum(totals.values()) == 6 * 5 * 10

        async def settled() -> list:
            boards = [[await board_of(http, n.url, room) for room in CLUSTER_ROOMS] for n in nodes]
            assert all(b == boards[0] for b in boards), "instances disagree"
            for room, rows in zip(CLUSTER_ROOMS, boards[0], strict=True):
                members = [p for p in players if (room == "guild:owls" and int(p[1:]) < 3)
                           or (room == "region:eu" and int(p[1:]) % 2 == 0)
                           or (room == "region:na" and int(p[1:]) % 2 == 1)]
                assert sorted(r["score"] for r in rows) == sorted(totals[p] for p in members)
            return boards[0]

        boards = await eventually(settled)
        await asyncio.sleep(settings.flush_ms * 2 / 1000)
        for watcher in watchers:
            result = await watcher.result()
            assert result["errors"] == [] and result["gaps"] == 0, result
            check_deltas(result, settings.flush_ms)
            assert result["boards"]["region:eu"]["all"] == boards[0]
            assert result["boards"]["region:na"]["all"] == boards[1]
        for client in players.values():
            await client.sio.disconnect()


async def kill_9_run(instances, settings, r) -> None:
    """The lease holder killed mid-traffic; `r` a client of the instances' Redis (the lease)."""
    holder = await instances()

    async def holds() -> None:
        lease = await r.get(LEASE_KEY)
        assert lease and lease.decode().split(":")[1] == str(holder.proc.pid)

    await eventually(holds)
    survivors = [await instances(), await instances()]
    watchers = [await Watcher.start(node.url, t, ["region:eu"])
                for node in survivors for t in ("websocket", "polling")]
    async with aiohttp.ClientSession() as http:
        players = {f"k{i}": await make_player(http, survivors[i % 2].url, f"k{i}", "eu", None) for i in range(4)}
        traffic = asyncio.create_task(drive(players, rounds=12, pause=0.1))
        await asyncio.sleep(1.0)
        holder.proc.send_signal(signal.SIGKILL)
        holder.proc.wait()
        killed_at = asyncio.get_running_loop().time()
        killed_wall_ms = time.time() * 1000

        async def taken_over() -> None:
            lease = await r.get(LEASE_KEY)
            assert lease and lease.decode().split(":")[1] in {str(s.proc.pid) for s in survivors}

        await eventually(taken_over)
        assert asyncio.get_running_loop().time() - killed_at < 3 * settings.flush_ms / 1000 + 1.0
        acked = await traffic
        totals = await totals_from_profiles(http, survivors[0].url, players)
        assert totals == acked

        async def settled() -> list[dict]:
            rows = await board_of(http, survivors[1].url, "region:eu")
            assert {r["player_id"]: r["score"] for r in rows} == totals
            return rows

        rows = await eventually(settled)
        await asyncio.sleep(settings.flush_ms * 2 / 1000)
        for watcher in watchers:
            result = await watcher.result()
            check_deltas(result, settings.flush_ms)
            assert result["boards"]["region:eu"]["all"] == rows
            assert max(d["received"] for d in result["deltas"]["region:eu"]) > killed_wall_ms  # deltas resumed
        for client in players.values():
            await client.sio.disconnect()
