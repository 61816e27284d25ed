"""Session revocation, known to every instance within a poll.

MongoDB holds the truth (`revoked_before` on the player document). A Redis sorted set,
player -> revoked_before (ms), is how every instance learns it fast: each polls the set
about once a second, keeps what it learned in memory (checked, without a round trip, each
time a connection acts) and closes its own connections of a newly revoked player. A
connect reads the set's score for its player (ZSCORE), or the MongoDB document while Redis
is away.

Everything kept is bounded by SESSION_TTL_S: a revocation older than that refuses nothing
any more (every token issued before it has expired), so it is dropped from the set and
from each instance's view.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.anticheat.tokens import SessionClaims
from app.breaker import Breaker
from app.clock import now_ms
from app.errors import ProtocolError, outage_as_unavailable
from app.players.store import PlayerStore
from app.tasks import stop_task, stopping

log = logging.getLogger(__name__)

KEY = "sessions:revoked"
POLL_S = 1.0
# A poll reads revocations stamped since its last one, less this: another instance's clock
# may run behind this one's by up to that much and its revocations are still seen.
CLOCK_SKEW_MS = 30_000

OnRevoked = Callable[[str, int], Awaitable[object]]


class Revocations:
    def __init__(self, redis: Redis, store: PlayerStore, session_ttl_s: int, *,
                 on_revoked: OnRevoked | None = None, breaker: Breaker | None = None,
                 clock: Callable[[], int] = now_ms, poll_s: float = POLL_S) -> None:
        """`on_revoked(player_id, revoked_before_ms)` closes this instance's connections of that
        player whose session was issued earlier."""
        self._redis = redis
        self._store = store
        self._ttl_ms = session_ttl_s * 1000
        self._on_revoked = on_revoked
        self._breaker = breaker or Breaker()
        self._clock = clock
        self._poll_s = poll_s
        self._view: dict[str, int] = {}
        self._unannounced: dict[str, int] = {}  # stored in MongoDB, not yet in Redis: sent at each poll
        self._since_ms: int | None = None  # None: nothing read yet, read every live revocation
        self._task: asyncio.Task | None = None

    def revoked(self, claims: SessionClaims) -> bool:
        """From memory only: what the last poll (or a revocation made here) taught this instance."""
        return claims.issued_ms < self._view.get(claims.player_id, 0)

    async def refuse_if_revoked(self, claims: SessionClaims) -> None:
        """For a connect: token_invalid when the session was issued before its player's
        revocation, read from Redis, or from MongoDB while Redis is away."""
        before = self._view.get(claims.player_id, 0)
        if claims.issued_ms >= before:
            before = max(before, await self._revoked_before(claims.player_id))
        if claims.issued_ms < before:
            raise ProtocolError("token_invalid", "this session was revoked; create a new session")

    async def _revoked_before(self, player_id: str) -> int:
        if self._breaker.ready():
            try:
                score = await self._redis.zscore(KEY, player_id)
                return int(score or 0)
            except (RedisError, OSError):
                self._breaker.trip()
                log.warning("revocations: Redis unavailable, reading MongoDB", extra={"player_id": player_id})
        with outage_as_unavailable("the score store"):  # refused, never let through unchecked
            return await self._store.revoked_before(player_id)

    async def revoke(self, player_id: str) -> int:
        """Revoke every session of the player issued before now; the stored moment (ms).
        MongoDB first (the truth), then Redis, then this instance's own connections."""
        at_ms = await self._store.revoke_sessions(player_id, self._clock())
        if at_ms is None:
            raise ProtocolError("not_found", f"no player {player_id!r}")
        await self._learn(player_id, at_ms)
        try:
            await self._redis.zadd(KEY, {player_id: at_ms}, gt=True)
        except (RedisError, OSError) as exc:
            # Recorded in MongoDB and on this instance; the others hear of it once a poll gets
            # it into Redis. Until then they would not, so the caller is told to retry.
            self._unannounced[player_id] = max(at_ms, self._unannounced.get(player_id, 0))
            raise ProtocolError("unavailable", "the revocation is stored but not yet announced; retry") from exc
        return at_ms

    async def poll_once(self) -> int:
        """Learn the revocations made since the last poll (every live one on the first) and
        drop those past the session TTL; the number of players newly revoked."""
        now = self._clock()
        horizon = now - self._ttl_ms
        since = horizon if self._since_ms is None else max(horizon, self._since_ms - CLOCK_SKEW_MS)
        if self._unannounced:
            sending = dict(self._unannounced)
            await self._redis.zadd(KEY, sending, gt=True)
            for pid, at in sending.items():
                if self._unannounced.get(pid) == at:  # not revoked again meanwhile
                    del self._unannounced[pid]
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(KEY, "-inf", f"({horizon}")
            pipe.zrangebyscore(KEY, since, "+inf", withscores=True)
            _, rows = await pipe.execute()
        self._since_ms = now
        self._view = {pid: at for pid, at in self._view.items() if at > horizon}
        self._unannounced = {pid: at for pid, at in self._unannounced.items() if at > horizon}
        learned = 0
        for member, score in rows:
            learned += await self._learn(member.decode() if isinstance(member, bytes) else member, int(score))
        return learned

    async def _learn(self, player_id: str, at_ms: int) -> int:
        if at_ms <= self._view.get(player_id, 0):
            return 0
        self._view[player_id] = at_ms
        if self._on_revoked is not None:
            try:
                await self._on_revoked(player_id, at_ms)
            except Exception:  # noqa: BLE001 - one player's connections never stop the others' revocation
                log.exception("revocations: could not close the connections", extra={"player_id": player_id})
        return 1

    async def run(self) -> None:
        failing = False
        while not stopping():
            try:
                await self.poll_once()
            except Exception:  # noqa: BLE001 - a failed poll is retried at the next tick
                if not failing:  # once per outage, not every second
                    log.warning("revocations: poll failed; retrying every %.1f s", self._poll_s, exc_info=True)
                failing = True
            else:
                if failing:
                    log.info("revocations: polling again")
                failing = False
            await asyncio.sleep(self._poll_s)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="revocation-poll")

    async def stop(self) -> None:
        if self._task is not None:
            await stop_task(self._task)
            self._task = None
