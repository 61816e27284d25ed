"""One validated Settings object, read once from the environment (PROTOCOL.md section 2)."""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import tempfile
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from app.leaderboard.periods import DAILY, DAY_MS, WEEKLY, Period, PeriodTable
from app.redisconn import is_cluster, is_sentinel, parse_cluster_url, parse_sentinel_url


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


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = (env.get(name, "") or default).strip().lower()
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def _list(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


MIN_KEY_CHARS = 16

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _secret_keys(env: Mapping[str, str], data_dir: Path) -> Secret | tuple[Secret, ...]:
    """SECRET_KEY (several, comma-separated: the first signs, every one verifies), or one
    generated on first start and kept so tokens survive a restart."""
    raw = env.get("SECRET_KEY", "")
    if raw:
        keys = _list(raw)
        if not keys or any(len(key) < MIN_KEY_CHARS for key in keys):
            raise ConfigError(f"SECRET_KEY: every comma-separated key must be at least {MIN_KEY_CHARS} characters")
        return Secret(keys[0]) if len(keys) == 1 else tuple(Secret(key) for key in keys)
    if env.get("REDIS_URL"):
        # Each instance would generate its own key and refuse the tokens of every other.
        raise ConfigError("SECRET_KEY must be set when REDIS_URL is: instances sharing Redis must share the key "
                          "that signs their tokens")
    return _generated_key(data_dir)


def _generated_key(data_dir: Path) -> Secret:
    path = data_dir / "secret_key"
    data_dir.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Written whole to a private temporary file, then linked into place: the link fails if
        # another instance starting at the same moment got there first, and nobody ever reads
        # a file that is created but not yet written.
        fd, tmp = tempfile.mkstemp(dir=data_dir, prefix=".secret_key.")
        try:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(48))
            with suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    kept = path.read_text().strip()
    if len(kept) < MIN_KEY_CHARS:
        raise ConfigError(f"{path} holds no usable key: delete it to generate a new one, or set SECRET_KEY")
    return Secret(kept)


def _api_key(env: Mapping[str, str]) -> Secret | None:
    raw = env.get("API_KEY") or None
    if raw is None:
        return None
    if len(raw) < MIN_KEY_CHARS:
        raise ConfigError(f"API_KEY must be at least {MIN_KEY_CHARS} characters")
    return Secret(raw)


def _networks(raw: str, name: str) -> tuple[Network, ...]:
    out = []
    for part in _list(raw):
        try:
            out.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ConfigError(f"{name}: {part!r} is not an IP address or CIDR") from None
    return tuple(out)


def _trusted_proxies(env: Mapping[str, str]) -> tuple[Network, ...]:
    if _flag(env.get("TRUST_PROXY", "0"), "TRUST_PROXY"):
        # It took the client's own X-Forwarded-For from anyone; keeping it would keep the hole.
        raise ConfigError("TRUST_PROXY was removed: set TRUSTED_PROXIES to the addresses of your reverse proxies")
    return _networks(env.get("TRUSTED_PROXIES", ""), "TRUSTED_PROXIES")


def _redis_url(env: Mapping[str, str]) -> str | None:
    url = env.get("REDIS_URL") or None
    if url is not None and is_sentinel(url):
        try:
            parse_sentinel_url(url)
        except ValueError as exc:
            raise ConfigError(f"REDIS_URL: {exc}") from None
    if url is not None and is_cluster(url):
        try:
            parse_cluster_url(url)
        except ValueError as exc:
            raise ConfigError(f"REDIS_URL: {exc}") from None
    return url


@dataclass(frozen=True)
class Settings:
    secret_key: Secret | tuple[Secret, ...]
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
    connect_timeout_s: int = 10
    http_reads_per_ip_per_s: int = 20
    http_read_burst: int = 100
    trusted_proxies: tuple[Network, ...] = ()
    reconcile_interval_s: int = 10
    # Fair play (section 9). The two switches exist for the benchmark that measures their cost.
    audit_retention_days: int = 30
    audit_trail: bool = True
    behaviour_scoring: bool = True
    event_loop: str = "asyncio"
    board_history_days: int = 35  # (v1.1) ended daily/weekly boards and tournaments stay readable this long
    # The periods boards are kept for beside all-time (app/leaderboard/periods.py); code, not environment.
    periods: tuple[Period, ...] = (DAILY, WEEKLY)

    @property
    def period_table(self) -> PeriodTable:
        return PeriodTable(self.periods, self.board_history_days * DAY_MS)

    @property
    def secret_keys(self) -> tuple[str, ...]:
        """Every key, the signing one first."""
        keys = self.secret_key if isinstance(self.secret_key, tuple) else (self.secret_key,)
        return tuple(str(key) for key in keys)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
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
        return cls(
            secret_key=_secret_keys(env, data_dir),
            host=env.get("HOST", "") or "127.0.0.1",
            port=_int(env, "PORT", 8080, 0, 65535),
            mongodb_url=mongodb_url,
            mongodb_db=env.get("MONGODB_DB", "") or "game",
            redis_url=_redis_url(env),
            api_key=_api_key(env),
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
            connect_timeout_s=_int(env, "CONNECT_TIMEOUT_S", 10, 1, 3600),
            http_reads_per_ip_per_s=_int(env, "HTTP_READS_PER_IP_PER_S", 20, 0, 1_000_000),
            http_read_burst=_int(env, "HTTP_READ_BURST", 100, 1, 1_000_000),
            trusted_proxies=_trusted_proxies(env),
            reconcile_interval_s=_int(env, "RECONCILE_INTERVAL_S", 10, 1, 50),
            audit_retention_days=_int(env, "AUDIT_RETENTION_DAYS", 30, 30, 3650),
            audit_trail=_flag(env.get("AUDIT_TRAIL", "1"), "AUDIT_TRAIL"),
            behaviour_scoring=_flag(env.get("BEHAVIOUR_SCORING", "1"), "BEHAVIOUR_SCORING"),
            event_loop=_choice(env, "EVENT_LOOP", "asyncio", ("asyncio", "uvloop")),
            board_history_days=_int(env, "BOARD_HISTORY_DAYS", 35, 1, 3650),
        )
