"""Helpers shared by test modules (fixtures stay in conftest.py; helpers are imported from here,
the processes the tests start from tests/processes.py)."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis
import socketio

from app.anticheat.proof import proof_ok, solve
from app.config import Secret, Settings
from app.leaderboard.boards import Standing
from app.leaderboard.keys import LEASE_KEY
from app.leaderboard.periods import DAILY, WEEKLY, PeriodPoints, Totals
from tests.processes import ROOT, DocumentStoreProcess, RedisProcess

TEST_ACTIONS = {
    "actions": {
        "quick": {"points": 10, "min_ms": 0, "ttl_s": 60, "difficulty": 4, "per_minute": 1000},
        "big": {"points": 600, "min_ms": 0, "ttl_s": 60, "difficulty": 4, "per_minute": 1000},
        "slow": {"points": 50, "min_ms": 400, "ttl_s": 60, "difficulty": 4, "per_minute": 1000},
        "brief": {"points": 5, "min_ms": 0, "ttl_s": 1, "difficulty": 4, "per_minute": 1000},
        "limited": {"points": 1, "min_ms": 0, "ttl_s": 60, "difficulty": 4, "per_minute": 2},
        "hard": {"points": 1, "min_ms": 0, "ttl_s": 60, "difficulty": 30, "per_minute": 1000},
    }
}


# Most tests send many events and sessions from one address; the abuse limits have their own tests.
NO_ABUSE_LIMITS: dict[str, Any] = {"socket_events_per_s": 1_000_000, "socket_event_burst": 1_000_000,
                   "connections_per_ip": 0, "sessions_per_ip_per_minute": 0, "http_reads_per_ip_per_s": 0}


# The API_KEY of the apps the operator tests call (op_settings; Operator below sends it).
OPERATOR_KEY = "operator-key-0123456789"


def stack_settings(redis_proc: RedisProcess, mongo_proc: DocumentStoreProcess, actions_file: Path, data_dir: Path,
                   db_prefix: str = "t") -> Settings:
    """Settings on the tests' own stores: a database of its own, a flushed Redis, the test
    catalogue, no abuse limits."""
    redis.Redis.from_url(redis_proc.url).flushall()
    return Settings(
        secret_key=Secret("test-secret-key-0123456789"),
        port=0,
        mongodb_url=mongo_proc.url,
        mongodb_db=f"{db_prefix}_{uuid.uuid4().hex[:12]}",
        redis_url=redis_proc.url,
        allow_guest_sessions=True,
        actions_file=actions_file,
        data_dir=data_dir,
        flush_ms=200,
        **NO_ABUSE_LIMITS,
    )


async def eventually(check: Callable[[], Awaitable[object]], timeout: float = 10.0, interval: float = 0.05):
    """Run an async check until it stops raising AssertionError: for what the flusher applies."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await check()
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(interval)


class Client:
    """A python-socketio AsyncClient that records every pushed event."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: dict[str, list] = {}

        @self.sio.on("*")
        async def record(event: str, data: object = None) -> None:
            self.events.setdefault(event, []).append(data)

    async def call(self, event: str, data: object = None, timeout: float = 10) -> dict:
        return await self.sio.call(event, data, timeout=timeout)

    async def play(self, action: str = "quick") -> tuple[dict, dict]:
        """Start and complete one action; returns (challenge, ack)."""
        started = await self.call("action:start", {"action": action})
        assert started["ok"], started
        challenge = started["challenge"]
        proof = solve(challenge["token"], challenge["difficulty"])
        if challenge["min_ms"]:
            await asyncio.sleep(challenge["min_ms"] / 1000 + 0.05)
        return challenge, await self.call("action:complete", {"token": challenge["token"], "proof": proof})

    async def wait_event(self, event: str, count: int = 1, timeout: float = 10) -> list:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.events.get(event, [])) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"got {len(self.events.get(event, []))} {event}, wanted {count}")
            await asyncio.sleep(0.02)
        return self.events[event]


async def create_session(http: aiohttp.ClientSession, url: str, region: str = "eu") -> dict:
    """A guest session for a new player, on any server (no app fixture needed)."""
    player_id = f"p{uuid.uuid4().hex[:10]}"
    body = {"player_id": player_id, "name": player_id, "region": region}
    async with http.post(f"{url}/api/v1/sessions", json=body) as resp:
        assert resp.status == 201, await resp.text()
        return await resp.json()


async def open_client(url: str, token: str | None = None, transports: list[str] | None = None) -> Client:
    """A connected Client on any server; the caller disconnects it."""
    client = Client()
    await client.sio.connect(url, auth={"token": token} if token else None,
                             transports=transports or ["websocket"], wait_timeout=10)
    return client


class Watcher:
    """A JS socket.io-client spectator (tests/js/watcher.mjs) in a node process."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, url: str, transports: str, rooms: list[str], top_n: int = 10) -> Watcher:
        node = shutil.which("node")
        assert node, "node is missing: run make setup"
        proc = await asyncio.create_subprocess_exec(
            node, str(ROOT / "tests" / "js" / "watcher.mjs"), url, transports, ",".join(rooms), str(top_n),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
        )
        assert proc.stderr is not None
        assert (await asyncio.wait_for(proc.stderr.readline(), 30)).strip() == b"ready"
        return cls(proc)

    async def result(self) -> dict:
        assert self.proc.stdin is not None and self.proc.stdout is not None, "started with PIPEs"
        self.proc.stdin.write(b"stop\n")
        await self.proc.stdin.drain()
        line = await asyncio.wait_for(self.proc.stdout.readline(), 30)
        await self.proc.wait()
        return json.loads(line)


async def run_node_json(node: str, script: Path, config: dict, timeout_s: float, hint: str = "") -> dict:
    """Run a node test script with its JSON config; return the last JSON object it printed.
    The script reports failure with a non-zero exit or an "error" field."""
    config = {"root": str(ROOT), **config}
    proc = await asyncio.create_subprocess_exec(
        node, str(script), json.dumps(config), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        stdout, stderr = await proc.communicate()
        pytest.fail(f"{script.name} ran over {timeout_s} s\nstdout: {stdout.decode()}\nstderr: {stderr.decode()}")
    out, err = stdout.decode(), stderr.decode()
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines, f"{script.name} printed nothing (exit {proc.returncode})\nstderr: {err}"
    result = json.loads(lines[-1])
    assert proc.returncode == 0 and "error" not in result, (
        f"{script.name} failed (exit {proc.returncode}): {result.get('error')}\n{hint}"
        f"observed: {json.dumps(result, indent=1)}\nstderr: {err}")
    return result


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
