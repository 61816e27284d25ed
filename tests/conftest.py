"""Shared fixtures: a real redis-server and a real MongoDB-wire server per test session,
and a real app on a real port per test. Nothing of our own I/O is mocked.
The helpers they use are tests/support.py's and tests/processes.py's, where test modules import them from."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
import redis
import redis.asyncio

from app.config import Secret, Settings
from app.server import create_app
from tests.processes import ROOT, DocumentStoreProcess, Instance, RedisProcess, Running
from tests.support import OPERATOR_KEY, TEST_ACTIONS, Client, eventually, stack_settings


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
