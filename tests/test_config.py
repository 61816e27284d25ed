"""Settings.from_env against the table in PROTOCOL.md section 2."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest

from app.config import ConfigError, Secret, Settings

KEY = "k" * 24


def load(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"DATA_DIR": str(tmp_path / "data"), **env})


def test_defaults_match_the_protocol_table() -> None:
    settings = Settings.from_env({"SECRET_KEY": KEY})
    assert settings.host == "127.0.0.1"
    assert settings.port == 8080
    assert settings.mongodb_url is None
    assert settings.mongodb_db == "game"
    assert settings.redis_url is None
    assert settings.secret_key == Secret(KEY)
    assert settings.api_key is None
    assert settings.allow_guest_sessions is True
    assert settings.cors_origins == ("*",)
    assert settings.regions == ("na", "eu", "apac", "sa", "oce")
    assert settings.actions_file is None
    assert settings.top_n == 10
    assert settings.flush_ms == 1000
    assert settings.data_dir == Path("var")


def test_empty_values_count_as_unset() -> None:
    env = {name: "" for name in ("HOST", "PORT", "MONGODB_URL", "MONGODB_DB", "REDIS_URL", "API_KEY", "CORS_ORIGINS",
                                 "REGIONS", "ACTIONS_FILE", "TOP_N", "LEADERBOARD_FLUSH_MS", "DATA_DIR")}
    settings = Settings.from_env({**env, "SECRET_KEY": KEY})
    assert settings == Settings.from_env({"SECRET_KEY": KEY})


def test_every_variable_is_read(tmp_path: Path) -> None:
    actions = tmp_path / "actions.json"
    actions.write_text("{}")
    settings = Settings.from_env({
        "HOST": "0.0.0.0", "PORT": "9000", "MONGODB_URL": "mongodb://db:27017", "MONGODB_DB": "scores",
        "REDIS_URL": "redis://cache:6379/1", "SECRET_KEY": KEY, "API_KEY": "api-key-123-456789",
        "ALLOW_GUEST_SESSIONS": "1", "CORS_ORIGINS": "https://a.example, https://b.example",
        "REGIONS": "eu, na ,x_1", "ACTIONS_FILE": str(actions), "TOP_N": "25", "LEADERBOARD_FLUSH_MS": "250",
        "DATA_DIR": str(tmp_path / "d"),
    })
    assert settings.host == "0.0.0.0"
    assert settings.port == 9000
    assert settings.mongodb_url == "mongodb://db:27017"
    assert settings.mongodb_db == "scores"
    assert settings.redis_url == "redis://cache:6379/1"
    assert settings.api_key == Secret("api-key-123-456789")
    assert settings.allow_guest_sessions is True
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.regions == ("eu", "na", "x_1")
    assert settings.actions_file == actions
    assert settings.top_n == 25
    assert settings.flush_ms == 250
    assert settings.data_dir == tmp_path / "d"


def test_guest_sessions_default_follows_mongodb_url(tmp_path: Path) -> None:
    assert load(tmp_path).allow_guest_sessions is True
    assert load(tmp_path, MONGODB_URL="mongodb://127.0.0.1:1").allow_guest_sessions is False


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("0", False), ("true", True), ("false", False)])
def test_guest_sessions_explicit(tmp_path: Path, raw: str, expected: bool) -> None:
    assert load(tmp_path, ALLOW_GUEST_SESSIONS=raw).allow_guest_sessions is expected
    assert load(tmp_path, ALLOW_GUEST_SESSIONS=raw, MONGODB_URL="mongodb://x").allow_guest_sessions is expected


def test_guest_sessions_bad_flag(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ALLOW_GUEST_SESSIONS"):
        load(tmp_path, ALLOW_GUEST_SESSIONS="maybe")


def test_secret_key_generated_once_and_kept_under_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "nested" / "data"
    first = Settings.from_env({"DATA_DIR": str(data)})
    path = data / "secret_key"
    assert path.is_file()
    assert len(str(first.secret_key)) >= 32
    assert str(first.secret_key) == path.read_text().strip()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = Settings.from_env({"DATA_DIR": str(data)})
    assert second.secret_key == first.secret_key
    other = Settings.from_env({"DATA_DIR": str(tmp_path / "elsewhere")})
    assert other.secret_key != first.secret_key


def test_secret_key_default_data_dir_is_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    assert (tmp_path / "var" / "secret_key").read_text().strip() == str(settings.secret_key)


def test_given_secret_key_writes_nothing(tmp_path: Path) -> None:
    settings = load(tmp_path, SECRET_KEY=KEY)
    assert str(settings.secret_key) == KEY
    assert not (tmp_path / "data" / "secret_key").exists()


def test_short_secret_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load(tmp_path, SECRET_KEY="short")


def test_empty_kept_secret_key_is_never_used(tmp_path: Path) -> None:
    """A kept key file left empty (say, by a crash mid-write) must not make an empty signing key."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "secret_key").write_text("")
    try:
        settings = Settings.from_env({"DATA_DIR": str(data)})
    except ConfigError:
        return
    assert len(str(settings.secret_key)) >= 16


@pytest.mark.parametrize("raw", ["0", "101", "-1", "ten", "1.5", "1e1"])
def test_bad_top_n(tmp_path: Path, raw: str) -> None:
    with pytest.raises(ConfigError, match="TOP_N"):
        load(tmp_path, TOP_N=raw)


@pytest.mark.parametrize(("raw", "expected"), [("1", 1), ("100", 100), (" 7 ", 7)])
def test_top_n_bounds(tmp_path: Path, raw: str, expected: int) -> None:
    assert load(tmp_path, TOP_N=raw).top_n == expected


@pytest.mark.parametrize("raw", ["-1", "65536", "http", "80.0", "8080x"])
def test_bad_port(tmp_path: Path, raw: str) -> None:
    with pytest.raises(ConfigError, match="PORT"):
        load(tmp_path, PORT=raw)


@pytest.mark.parametrize("raw", ["0", "65535"])
def test_port_bounds(tmp_path: Path, raw: str) -> None:
    assert load(tmp_path, PORT=raw).port == int(raw)


@pytest.mark.parametrize("raw", ["EU", "eu,NA", "e u", "eu;na", ",", " , ", "a" * 17, "eu,region:x", "é"])
def test_bad_regions(tmp_path: Path, raw: str) -> None:
    with pytest.raises(ConfigError, match="REGIONS"):
        load(tmp_path, REGIONS=raw)


def test_regions_trimmed_and_empty_parts_dropped(tmp_path: Path) -> None:
    assert load(tmp_path, REGIONS=" eu ,, na,").regions == ("eu", "na")


@pytest.mark.parametrize("raw", ["10", "60001", "x"])
def test_bad_flush_interval(tmp_path: Path, raw: str) -> None:
    with pytest.raises(ConfigError, match="LEADERBOARD_FLUSH_MS"):
        load(tmp_path, LEADERBOARD_FLUSH_MS=raw)


def test_actions_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ACTIONS_FILE"):
        load(tmp_path, ACTIONS_FILE=str(tmp_path / "missing.json"))
    with pytest.raises(ConfigError, match="ACTIONS_FILE"):
        load(tmp_path, ACTIONS_FILE=str(tmp_path))


def test_secret_repr_hides_the_value() -> None:
    secret = Secret("super-secret-value-123")
    assert "super-secret" not in repr(secret)
    assert str(secret) == "super-secret-value-123"
    assert secret == Secret("super-secret-value-123")
    assert secret != Secret("another-value-12345")
    assert secret != "super-secret-value-123"
    assert hash(secret) == hash(Secret("super-secret-value-123"))


def test_settings_repr_hides_secrets(tmp_path: Path) -> None:
    settings = load(tmp_path, SECRET_KEY="the-signing-key-0123", API_KEY="the-api-key-456-7890")
    text = repr(settings)
    assert "the-signing-key" not in text
    assert "the-api-key" not in text


def test_operations_settings_defaults(tmp_path: Path) -> None:
    settings = load(tmp_path, SECRET_KEY=KEY)
    assert settings.drain_timeout_s == 10
    assert (settings.socket_events_per_s, settings.socket_event_burst) == (20, 40)
    assert (settings.connections_per_ip, settings.sessions_per_ip_per_minute) == (200, 60)
    assert settings.trusted_proxies == ()
    assert settings.log_level == "INFO"


def test_operations_settings_are_read(tmp_path: Path) -> None:
    settings = load(tmp_path, SECRET_KEY=KEY, DRAIN_TIMEOUT_S="30", SOCKET_EVENTS_PER_S="50", SOCKET_EVENT_BURST="80",
                    CONNECTIONS_PER_IP="0", SESSIONS_PER_IP_PER_MINUTE="0",
                    TRUSTED_PROXIES=" 10.0.0.0/8, 192.0.2.7 ,2001:db8::/32", LOG_LEVEL="debug")
    assert settings.drain_timeout_s == 30
    assert (settings.socket_events_per_s, settings.socket_event_burst) == (50, 80)
    assert (settings.connections_per_ip, settings.sessions_per_ip_per_minute) == (0, 0)
    assert settings.trusted_proxies == (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("192.0.2.7/32"),
                                        ipaddress.ip_network("2001:db8::/32"))
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(("name", "raw"), [
    ("DRAIN_TIMEOUT_S", "0"), ("DRAIN_TIMEOUT_S", "601"), ("SOCKET_EVENTS_PER_S", "0"), ("SOCKET_EVENT_BURST", "-1"),
    ("CONNECTIONS_PER_IP", "-1"), ("SESSIONS_PER_IP_PER_MINUTE", "many"), ("TRUST_PROXY", "maybe"),
    ("TRUSTED_PROXIES", "10.0.0.0/33"), ("TRUSTED_PROXIES", "proxy.internal"),
    ("LOG_LEVEL", "verbose"),
])
def test_bad_operations_settings(tmp_path: Path, name: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load(tmp_path, SECRET_KEY=KEY, **{name: raw})


def test_instances_starting_together_never_read_a_half_written_key(tmp_path: Path) -> None:
    """The generated key is linked into place whole: a second instance reading at the same moment
    sees no file or the whole key, never an empty one, and all end with the same key."""
    from concurrent.futures import ThreadPoolExecutor

    for attempt in range(5):
        data = tmp_path / f"race{attempt}"
        env = {"DATA_DIR": str(data)}
        with ThreadPoolExecutor(8) as pool:
            keys = list(pool.map(lambda e: str(Settings.from_env(e).secret_key), [env] * 8))
        assert len(set(keys)) == 1 and len(keys[0]) >= 32
        assert [p.name for p in data.iterdir()] == ["secret_key"]  # no temporary file left behind


def test_redis_without_a_shared_secret_key_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY must be set when REDIS_URL"):
        load(tmp_path, REDIS_URL="redis://127.0.0.1:6379/0")
    assert load(tmp_path, REDIS_URL="redis://127.0.0.1:6379/0", SECRET_KEY=KEY).redis_url


def test_trust_proxy_is_gone_and_refuses_to_start(tmp_path: Path) -> None:
    """TRUST_PROXY=1 took the client's own X-Forwarded-For from anyone: a deployment still setting
    it must not start as if its proxies were trusted, nor quietly as if it had none."""
    with pytest.raises(ConfigError, match="TRUST_PROXY was removed: set TRUSTED_PROXIES"):
        load(tmp_path, SECRET_KEY=KEY, TRUST_PROXY="1")
    with pytest.raises(ConfigError, match="TRUST_PROXY was removed"):
        load(tmp_path, SECRET_KEY=KEY, TRUST_PROXY="1", TRUSTED_PROXIES="10.0.0.1")
    assert load(tmp_path, SECRET_KEY=KEY, TRUST_PROXY="0").trusted_proxies == ()


def test_short_api_key_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="API_KEY"):
        load(tmp_path, SECRET_KEY=KEY, API_KEY="short")
    assert str(load(tmp_path, SECRET_KEY=KEY, API_KEY="a" * 16).api_key) == "a" * 16


def test_reconcile_interval(tmp_path: Path) -> None:
    assert load(tmp_path, SECRET_KEY=KEY).reconcile_interval_s == 10
    assert load(tmp_path, SECRET_KEY=KEY, RECONCILE_INTERVAL_S="2").reconcile_interval_s == 2
    with pytest.raises(ConfigError, match="RECONCILE_INTERVAL_S"):
        load(tmp_path, SECRET_KEY=KEY, RECONCILE_INTERVAL_S="0")


def test_secret_key_may_list_keys_the_first_signing(tmp_path: Path) -> None:
    new, old = "n" * 20, "o" * 20
    settings = load(tmp_path, SECRET_KEY=f" {new} , {old} ,")
    assert settings.secret_keys == (new, old)
    assert old not in repr(settings) and new not in repr(settings)
    assert load(tmp_path, SECRET_KEY=new).secret_keys == (new,)
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load(tmp_path, SECRET_KEY=f"{new},short")
