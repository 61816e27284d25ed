"""Fixtures of the leaderboard tests: a flushed Redis client and a repository on a fresh database."""

from __future__ import annotations

import uuid

import pytest
from redis.asyncio import Redis

from app.scores.repository import ScoreRepository, open_database


@pytest.fixture
async def redis(redis_proc):
    client = Redis.from_url(redis_proc.url)
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture
async def repo(mongo_proc):
    client, db = open_database(mongo_proc.url, f"lb_{uuid.uuid4().hex[:10]}", 5000)
    yield ScoreRepository(db)
    await client.close()
