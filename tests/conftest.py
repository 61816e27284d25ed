"""Shared fixtures: a real redis-server and a real MongoDB-wire server per test session,
and a real app on a real port per test. Nothing of our own I/O is mocked."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis
import redis.asyncio
import socketio

from app.anticheat.proof import solve
from app.config import Secret, Settings
from app.embedded import free_port
from app.server import create_app

ROOT = Path(__file__).resolve().parent.parent

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

# The API_KEY of the apps the operator tests call (op_settings; tests.support.Operator sends it).
OPERATOR_KEY = "operator-key-0123456789"


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listened on {port}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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


class RedisProcess:
    """A redis-server of the tests' own, on a free port, restartable (empty) on that port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is missing: run make setup"
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        wait_for_port(self.port, self.proc)

    def stop(self) -> None:
        if self.proc:
            stop(self.proc)


class DocumentStoreProcess:
    """The MongoDB-wire server (SecantusDB) of the tests' own, restartable on its port and files."""

    def __init__(self, storage: Path) -> None:
        self.port = free_port()
        self.storage = storage
        self.proc: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from secantus.cli import main; raise SystemExit(main())",
             "--host", "127.0.0.1", "--port", str(self.port), "--storage-path", str(self.storage),
             "--log-level", "WARNING"],
            stdout=subprocess.DEVNULL,
        )
        wait_for_port(self.port, self.proc)

    def stop(self) -> None:
        if self.proc:
            stop(self.proc)


@pytest.fixture(scope="session")
def redis_proc() -> Iterator[RedisProcess]:
    proc = RedisProcess()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def mongo_proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DocumentStoreProcess]:
    proc = DocumentStoreProcess(tmp_path_factory.mktemp("documents"))
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def actions_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("catalogue") / "actions.json"
    path.write_text(json.dumps(TEST_ACTIONS))
    return path


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


@pytest.fixture
def settings(tmp_path: Path, redis_proc: RedisProcess, mongo_proc: DocumentStoreProcess,
             actions_file: Path) -> Settings:
    """Settings for one test (stack_settings)."""
    return stack_settings(redis_proc, mongo_proc, actions_file, tmp_path)


@pytest.fixture
def op_settings(settings: Settings) -> Settings:
    """The test's settings with OPERATOR_KEY as the API_KEY."""
    return replace(settings, api_key=Secret(OPERATOR_KEY))


@pytest.fixture
async def redis_client(redis_proc: RedisProcess) -> AsyncIterator[redis.asyncio.Redis]:
    """An asyncio client of the tests' Redis, flushed first."""
    with redis.Redis.from_url(redis_proc.url) as sync:
        sync.flushall()
    client = redis.asyncio.Redis.from_url(redis_proc.url)
    try:
        yield client
    finally:
        await client.aclose()


class Instance:
    """`python -m app` as its own process, configured only through the environment."""

    def __init__(self, settings: Settings, port: int | None = None, log_path: Path | None = None, **env: str) -> None:
        """`log_path`: keep the instance's stderr (its JSON log lines) in that file."""
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "REDIS_URL": settings.redis_url or "",
            "MONGODB_URL": settings.mongodb_url or "",
            "MONGODB_DB": settings.mongodb_db,
            "SECRET_KEY": ",".join(settings.secret_keys),
            "ACTIONS_FILE": str(settings.actions_file),
            "DATA_DIR": str(settings.data_dir),
            "ALLOW_GUEST_SESSIONS": "1",
            "LEADERBOARD_FLUSH_MS": str(settings.flush_ms),
            "TOP_N": str(settings.top_n),
            "LOG_LEVEL": "WARNING",
            "SOCKET_EVENTS_PER_S": str(settings.socket_events_per_s),
            "SOCKET_EVENT_BURST": str(settings.socket_event_burst),
            "CONNECTIONS_PER_IP": str(settings.connections_per_ip),
            "SESSIONS_PER_IP_PER_MINUTE": str(settings.sessions_per_ip_per_minute),
            "HTTP_READS_PER_IP_PER_S": str(settings.http_reads_per_ip_per_s),
            **env,
        }
        self.log_path = log_path
        stderr = log_path.open("wb") if log_path else None
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=self.env, stderr=stderr)
        finally:
            if stderr:
                stderr.close()  # the child has its own copy

    async def ready(self, timeout: float = 30.0) -> Instance:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                assert self.proc.poll() is None, f"instance exited with {self.proc.returncode}"
                try:
                    async with http.get(f"{self.url}/readyz") as resp:
                        if resp.status == 200:
                            return self
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"{self.url} was not ready in {timeout} s")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        stop(self.proc)


@pytest.fixture
async def instances(settings: Settings) -> AsyncIterator[Callable[..., Awaitable[Instance]]]:
    """Start server instances as separate processes sharing the test's Redis and database."""
    started: list[Instance] = []

    async def start(**env: str) -> Instance:
        instance = Instance(settings, port=None, log_path=None, **env)  # named: env cannot fill them
        started.append(instance)
        return await instance.ready()

    yield start
    for instance in started:
        instance.stop()


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


class Running:
    """One app instance serving on a real port."""

    def __init__(self, server) -> None:
        self.server = server
        self.url = str(server.make_url("")).rstrip("/")
        self.app = server.app


@pytest.fixture
async def start_app(aiohttp_server) -> Callable[..., Awaitable[Running]]:
    async def start(settings: Settings, **changes) -> Running:
        server = await aiohttp_server(create_app(replace(settings, **changes)))
        return Running(server)

    return start


@pytest.fixture
async def app_url(start_app, settings: Settings) -> str:
    return (await start_app(settings)).url


@pytest.fixture
async def drained(redis_proc: RedisProcess) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Wait until the flusher has applied every queued standing to the boards."""
    client = redis.asyncio.Redis.from_url(redis_proc.url)

    async def wait() -> None:
        async def empty() -> None:
            assert await client.xlen("lb:queue") == 0

        await eventually(empty)

    yield wait
    await client.aclose()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def new_session(http: aiohttp.ClientSession, app_url: str) -> Callable[..., Awaitable[dict]]:
    async def make(player_id: str | None = None, region: str = "eu", guild: str | None = None,
                   name: str | None = None, url: str | None = None) -> dict:
        player_id = player_id or f"p{uuid.uuid4().hex[:10]}"
        body = {"player_id": player_id, "name": name or player_id[:32], "region": region}
        if guild:
            body["guild"] = guild
        async with http.post(f"{url or app_url}/api/v1/sessions", json=body) as resp:
            assert resp.status == 201, await resp.text()
            return await resp.json()

    return make


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


@pytest.fixture
async def connect(app_url: str) -> AsyncIterator[Callable[..., Awaitable[Client]]]:
    clients: list[Client] = []

    async def make(token: str | None = None, url: str | None = None, transports: list[str] | None = None,
                   auth: object = None) -> Client:
        client = Client()
        if auth is None and token is not None:
            auth = {"token": token}
        await client.sio.connect(url or app_url, auth=auth, transports=transports or ["websocket"],
                                 wait_timeout=10)
        clients.append(client)
        return client

    yield make
    for client in clients:
        if client.sio.connected:
            await client.sio.disconnect()


@pytest.fixture
async def player(new_session, connect) -> Callable[..., Awaitable[tuple[dict, Client]]]:
    async def make(url: str | None = None, **kwargs) -> tuple[dict, Client]:
        session = await new_session(url=url, **kwargs)
        return session, await connect(session["token"], url=url)

    return make


@pytest.fixture(scope="session")
def node() -> str:
    """node with the pinned socket.io-client installed; a missing one fails, never skips."""
    binary = shutil.which("node")
    if not binary:
        pytest.fail("node is not on PATH: the JS tests need it; run `make setup` (installs nodejs and npm)")
    if not (ROOT / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js").is_file():
        pytest.fail("node_modules/socket.io-client is missing: run `make setup` (npm ci)")
    return binary


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

