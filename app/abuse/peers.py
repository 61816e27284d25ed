"""Per-IP limits: open engine.io transports, and guest sessions created per minute.

Counted per instance, in memory: they hold during a Redis outage, and behind a balancer
that spreads one address over N instances a client gets at most N times the limit.
"""

from __future__ import annotations

import ipaddress
import time
from collections import Counter
from collections.abc import Callable, Iterable

from app.abuse.buckets import BucketsByKey
from app.config import Network

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(text: str) -> Address | None:
    """An IP address as a proxy writes it: bare, `[v6]:port` or `v4:port`; None for anything else.
    An IPv4-mapped IPv6 address is its IPv4 address (a dual-stack listener reports those)."""
    text = text.strip()
    if text.startswith("[") and "]" in text:
        text = text[1:text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, trusted: tuple[Network, ...]) -> bool:
    return any(address in network for network in trusted)


def client_ip(remote: str | None, forwarded_for: str | Iterable[str] | None, trusted: tuple[Network, ...]) -> str:
    """The client's address, as every per-IP limit counts it (PROTOCOL.md 2, TRUSTED_PROXIES).

    `remote` is the peer of the TCP connection; `forwarded_for` the X-Forwarded-For header
    (one value, or every value when the header came several times, in order). Only when
    `remote` is one of the `trusted` proxies is the header read, from the right: each proxy
    appends the address it got the request from, so the right-most entry that is not itself
    a trusted proxy is the client, and whatever a client wrote further left (a forged entry)
    is never looked at. All entries trusted: the left-most one.

    An entry that is not an IP address stops the walk, and the answer is the last trusted hop
    seen (the proxy that forwarded the garbage, or `remote`): nothing written by an untrusted
    party ever chooses the address, and such clients share their proxy's limits rather than
    escaping them.
    """
    peer = _address(remote) if remote else None
    if peer is None:
        return remote[:64] if remote else "unknown"
    if not forwarded_for or not trusted or not _trusted(peer, trusted):
        return str(peer)
    values = [forwarded_for] if isinstance(forwarded_for, str) else list(forwarded_for)
    entries = [entry for value in values for entry in value.split(",")]
    if not any(entry.strip() for entry in entries):
        return str(peer)
    hop = peer
    for entry in reversed(entries):
        address = _address(entry)
        if address is None:
            break
        hop = address
        if not _trusted(address, trusted):
            break
    return str(hop)


class PeerLimits:
    def __init__(self, connections_per_ip: int, sessions_per_minute: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._max_connections = connections_per_ip
        self._open: Counter[str] = Counter()
        self._sessions = (
            BucketsByKey(sessions_per_minute / 60, sessions_per_minute, clock=clock) if sessions_per_minute else None
        )

    def open_connection(self, ip: str) -> bool:
        """Count a new transport from `ip`; False (and not counted) when it has too many.
        Every True is matched by one close_connection, when that transport ends."""
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
