"""Fixtures of the operator route tests: an app with API_KEY, and an HTTP helper that sends it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import aiohttp
import pymongo
import pytest

from app.config import Secret, Settings

API_KEY = "operator-key-0123456789"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


class Operator:
    """An operator's HTTP calls against one app."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http = http
        self.url = url

    async def call(self, method: str, path: str, *, key: bool = True, **kwargs: Any) -> tuple[int, Any]:
        headers = {**(AUTH if key else {}), **kwargs.pop("headers", {})}
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


@pytest.fixture
def op_settings(settings: Settings) -> Settings:
    return replace(settings, api_key=Secret(API_KEY))


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
