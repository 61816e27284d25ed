"""Per-IP limits: open Socket.IO connections, and guest sessions created per minute.

Counted per instance, in memory: they hold during a Redis outage, and behind a balancer
that spreads one address over N instances a client gets at most N times the limit.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from app.abuse.buckets import BucketsByKey


def client_ip(remote: str | None, forwarded_for: str | None, trust_proxy: bool) -> str:
    """The peer's address; with trust_proxy, the first hop named in X-Forwarded-For
    (set it only behind a proxy that overwrites that header)."""
    if trust_proxy and forwarded_for:
        first = forwarded_for.split(",", 1)[0].strip()
        if first:
            return first[:64]
    return remote or "unknown"


class PeerLimits:
    def __init__(self, connections_per_ip: int, sessions_per_minute: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._max_connections = connections_per_ip
        self._open: Counter[str] = Counter()
        self._sessions = (
            BucketsByKey(sessions_per_minute / 60, sessions_per_minute, clock=clock) if sessions_per_minute else None
        )

    def open_connection(self, ip: str) -> bool:
        """Count a new connection from `ip`; False (and not counted) when it has too many."""
        if self._max_connections and self._open[ip] >= self._max_connections:
            return False
        self._open[ip] += 1
        return True

    def close_connection(self, ip: str) -> None:
        self._open[ip] -= 1
        if self._open[ip] <= 0:
            del self._open[ip]

    def session_wait_ms(self, ip: str) -> int:
        """0 when `ip` may create a session now, else the milliseconds until it may."""
        return self._sessions.take(ip) if self._sessions is not None else 0
