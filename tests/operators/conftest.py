"""Fixtures of the operator route tests: an app with API_KEY (op_settings), an Operator calling it,
and its database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import aiohttp
import pymongo
import pytest

from app.config import Settings
from tests.support import Operator


@pytest.fixture
async def ops_app(start_app, op_settings: Settings):
    return await start_app(op_settings)


@pytest.fixture
async def app_url(ops_app) -> str:
    """The shared fixtures (new_session, connect, player) play on the operators' app."""
    return ops_app.url


@pytest.fixture
async def operator(http: aiohttp.ClientSession, ops_app) -> Operator:
    return Operator(http, ops_app.url)


@pytest.fixture
def mongo(op_settings: Settings) -> Iterator[Any]:
    """The app's database, through a plain (blocking) client: for writing documents directly."""
    client: pymongo.MongoClient = pymongo.MongoClient(op_settings.mongodb_url)
    yield client[op_settings.mongodb_db]
    client.close()
