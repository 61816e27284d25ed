"""One validated Settings object, read once from the environment (PROTOCOL.md section 2)."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


class ConfigError(ValueError):
    """A setting that cannot be used; the server refuses to start rather than guess."""


class Secret:
    """A string that never shows itself in a repr or a log line."""

    def __init__(self, value: str) -> None:
        self._value = value

    def __str__(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('****')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and secrets.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self._value)


_REGION = re.compile(r"^[a-z0-9_-]{1,16}$")


def _flag(raw: str, name: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name} must be 0 or 1, not {raw!r}")


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}, not {value}")
    return value


_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _log_level(raw: str) -> str:
    level = (raw.strip() or "INFO").upper()
    if level not in _LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL must be one of {', '.join(_LOG_LEVELS)}, not {raw!r}")
    return level


def _list(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _secret_key(env: Mapping[str, str], data_dir: Path) -> Secret:
    """SECRET_KEY, or one generated on first start and kept so tokens survive a restart."""
    raw = env.get("SECRET_KEY", "")
    if raw:
        if len(raw) < 16:
            raise ConfigError("SECRET_KEY must be at least 16 characters")
        return Secret(raw)
    path = data_dir / "secret_key"
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        # Created private and exclusive: two instances starting together keep one key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48))
    kept = path.read_text().strip()
    if len(kept) < 16:
        raise ConfigError(f"{path} holds no usable key: delete it to generate a new one, or set SECRET_KEY")
    return Secret(kept)


@dataclass(frozen=True)
class Settings:
    secret_key: Secret
    host: str = "127.0.0.1"
    port: int = 8080
    mongodb_url: str | None = None
    mongodb_db: str = "game"
    redis_url: str | None = None
    api_key: Secret | None = None
    allow_guest_sessions: bool = True
    cors_origins: tuple[str, ...] = ("*",)
    regions: tuple[str, ...] = ("na", "eu", "apac", "sa", "oce")
    actions_file: Path | None = None
    top_n: int = 10
    flush_ms: int = 1000
    data_dir: Path = field(default_factory=lambda: Path("var"))
    session_ttl_s: int = 86400
    store_timeout_ms: int = 5000
    max_payload_bytes: int = 16384
    log_level: str = "INFO"
    drain_timeout_s: int = 10
    # Abuse limits (0 turns a per-IP limit off); see the README's "Operating it".
    socket_events_per_s: int = 20
    socket_event_burst: int = 40
    connections_per_ip: int = 200
    sessions_per_ip_per_minute: int = 60
    trust_proxy: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "Settings":
        data_dir = Path(env.get("DATA_DIR", "") or "var")
        mongodb_url = env.get("MONGODB_URL") or None
        guest_raw = env.get("ALLOW_GUEST_SESSIONS")
        allow_guests = mongodb_url is None if guest_raw is None else _flag(guest_raw, "ALLOW_GUEST_SESSIONS")
        regions = _list(env.get("REGIONS", "") or "na,eu,apac,sa,oce")
        bad = [r for r in regions if not _REGION.match(r)]
        if bad or not regions:
            raise ConfigError(f"REGIONS must be comma-separated codes of [a-z0-9_-], not {bad or '(empty)'}")
        origins = _list(env.get("CORS_ORIGINS", "") or "*")
        actions_file = env.get("ACTIONS_FILE") or None
        if actions_file and not Path(actions_file).is_file():
            raise ConfigError(f"ACTIONS_FILE {actions_file!r} is not a readable file")
        api_key = env.get("API_KEY") or None
        return cls(
            secret_key=_secret_key(env, data_dir),
            host=env.get("HOST", "") or "127.0.0.1",
            port=_int(env, "PORT", 8080, 0, 65535),
            mongodb_url=mongodb_url,
            mongodb_db=env.get("MONGODB_DB", "") or "game",
            redis_url=env.get("REDIS_URL") or None,
            api_key=Secret(api_key) if api_key else None,
            allow_guest_sessions=allow_guests,
            cors_origins=origins,
            regions=regions,
            actions_file=Path(actions_file) if actions_file else None,
            top_n=_int(env, "TOP_N", 10, 1, 100),
            flush_ms=_int(env, "LEADERBOARD_FLUSH_MS", 1000, 50, 60000),
            data_dir=data_dir,
            session_ttl_s=_int(env, "SESSION_TTL_S", 86400, 60, 30 * 86400),
            store_timeout_ms=_int(env, "STORE_TIMEOUT_MS", 5000, 100, 60000),
            max_payload_bytes=_int(env, "MAX_PAYLOAD_BYTES", 16384, 1024, 1 << 20),
            log_level=_log_level(env.get("LOG_LEVEL", "")),
            drain_timeout_s=_int(env, "DRAIN_TIMEOUT_S", 10, 1, 600),
            socket_events_per_s=_int(env, "SOCKET_EVENTS_PER_S", 20, 1, 1_000_000),
            socket_event_burst=_int(env, "SOCKET_EVENT_BURST", 40, 1, 1_000_000),
            connections_per_ip=_int(env, "CONNECTIONS_PER_IP", 200, 0, 1_000_000),
            sessions_per_ip_per_minute=_int(env, "SESSIONS_PER_IP_PER_MINUTE", 60, 0, 1_000_000),
            trust_proxy=_flag(env.get("TRUST_PROXY", "0"), "TRUST_PROXY"),
        )
