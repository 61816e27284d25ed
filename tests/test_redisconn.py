"""REDIS_URL's forms (app/redisconn.py): what a Sentinel URL means, and what the server refuses
to start with. The failover itself is in tests/operations/test_topologies.py."""

from __future__ import annotations

import pytest
from redis.asyncio.connection import DefaultParser
from redis.utils import HIREDIS_AVAILABLE

from app.config import ConfigError, Settings
from app.redisconn import DEFAULT_SENTINEL_PORT, RedisSource, is_sentinel, parse_sentinel_url

KEY = "k" * 32


def env(url: str) -> dict[str, str]:
    return {"REDIS_URL": url, "SECRET_KEY": KEY}


def test_a_sentinel_url_names_the_sentinels_and_the_service() -> None:
    target = parse_sentinel_url("redis+sentinel://10.0.0.1:26379,10.0.0.2:26380,[::1]:26381/scores")
    assert target.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26380), ("::1", 26381))
    assert target.service == "scores"
    assert (target.db, target.username, target.password) == (0, None, None)


def test_credentials_db_and_the_sentinels_own_password() -> None:
    target = parse_sentinel_url("redis+sentinel://app:p%40ss@h1,h2:5000/scores?db=3&sentinel_password=s3")
    assert target.sentinels == (("h1", DEFAULT_SENTINEL_PORT), ("h2", 5000))
    assert (target.username, target.password, target.db) == ("app", "p@ss", 3)
    assert target.sentinel_password == "s3"
    assert "p@ss" not in repr(target) and "s3" not in repr(target)


def test_only_the_sentinel_scheme_is_read_as_sentinel() -> None:
    assert is_sentinel("redis+sentinel://h:1/s") and is_sentinel("REDIS+SENTINEL://h:1/s")
    assert not is_sentinel("redis://h:6379/0") and not is_sentinel("rediss://h:6379/0")


@pytest.mark.parametrize(("url", "says"), [
    # python-socketio's own form: one form for operators, and a pointer to the other's db.
    ("redis+sentinel://h1:26379,h2:26379/0/scores", "python-socketio's /<db>/<service>"),
    ("redis+sentinel://h1:26379/", "service name"),
    ("redis+sentinel://h1:26379", "service name"),
    ("redis+sentinel://h1:26379/a/b/c", "service name"),
    ("redis+sentinel://h1:port/scores", "no valid port"),
    ("redis+sentinel://h1:70000/scores", "no valid port"),
    ("redis+sentinel://h1:26379,/scores", "not a sentinel address"),
    ("redis+sentinel:///scores", "not a sentinel address"),
    ("redis+sentinel://h1:26379/scores?dbx=1", "unknown parameter dbx"),
    ("redis+sentinel://h1:26379/scores?db=two", "db must be a whole number"),
])
def test_a_bad_sentinel_url_refuses_to_start(url: str, says: str) -> None:
    with pytest.raises(ConfigError, match="^REDIS_URL: ") as refused:
        Settings.from_env(env(url))
    assert says in str(refused.value)


def test_good_urls_start() -> None:
    for url in ("redis://127.0.0.1:6379/0", "rediss://h:6380/1", "redis+sentinel://h1:1,h2:2/scores?db=1"):
        assert Settings.from_env(env(url)).redis_url == url


async def test_building_clients_does_no_io() -> None:
    # Nothing listens on these ports: clients connect on first use, never when built (create_app).
    source = RedisSource("redis+sentinel://127.0.0.1:1,127.0.0.1:2/scores")
    assert source.sentinel
    client = source.client(max_connections=4, timeout=0.1, socket_timeout=0.1)
    await client.aclose()
    await source.aclose()
    assert not RedisSource("redis://127.0.0.1:1/0").sentinel



def test_replies_are_parsed_by_hiredis() -> None:
    # requirements.txt pins hiredis for the flush's speed (README benchmarks); redis-py drops back
    # to its pure-Python parser without a word when the installed hiredis is one it does not take.
    assert HIREDIS_AVAILABLE and "Hiredis" in DefaultParser.__name__
