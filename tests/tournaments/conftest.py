"""Fixtures of the tournament tests: a store on a database of its own with a service on a clock
the test turns, and an app with API_KEY with an operator's HTTP calls."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest
from pymongo import AsyncMongoClient

from app.clock import now_ms
from app.config import Settings
from tests.support import Operator
from tests.tournaments.support import Clock, Commands, Stack


@pytest.fixture
async def stack(mongo_proc) -> AsyncIterator[Stack]:
    commands = Commands()
    client: AsyncMongoClient = AsyncMongoClient(mongo_proc.url, event_listeners=[commands], timeoutMS=5000)
    built = Stack(client[f"tn_{uuid.uuid4().hex[:10]}"], commands)
    await built.store.ensure_indexes()
    await built.repo.ensure_indexes()
    yield built
    await client.close()


@pytest.fixture
def clock() -> Clock:
    return Clock(now_ms())


@pytest.fixture
async def app_url(start_app, op_settings: Settings) -> str:
    """The shared fixtures (new_session, connect, player) play on an app with API_KEY."""
    return (await start_app(op_settings)).url


@pytest.fixture
async def operator(http: aiohttp.ClientSession, app_url: str) -> Operator:
    return Operator(http, app_url)
