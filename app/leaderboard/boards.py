"""Sorted sets per board and period; knows Redis keys, nothing of rooms or sockets.

A board holds `score = -points` and `member = "<reached_ms:013>:<player_id>"`, so Redis's
own order (score, then member bytes) is: most points first, then who reached that score
first. Entries are absolute totals stamped with a version (the player's credited-action
count); an entry only replaces an older version, which makes applying the same update
twice, or out of order, a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from app.clock import day_key, period_end_ms, week_key

PERIODS = ("all", "daily", "weekly")
# Period keys outlive their period by this much, then Redis drops them.
_KEEP_AFTER_END_MS = {"daily": 2 * 86_400_000, "weekly": 8 * 86_400_000}

# KEYS: zset, index hash (pairs, one per board). ARGV: player_id, version, then per board:
# points, reached_ms, expire_at_ms (0 = never).
_APPLY = """
local pid = ARGV[1]
local version = tonumber(ARGV[2])
local changed = 0
for i = 1, #KEYS, 2 do
  local zkey, hkey = KEYS[i], KEYS[i + 1]
  local a = 3 + (i - 1) / 2 * 3
  local points, reached, expire_at = tonumber(ARGV[a]), ARGV[a + 1], tonumber(ARGV[a + 2])
  local cur = redis.call('HGET', hkey, pid)
  local stale = false
  if cur then
    local sep = string.find(cur, '|', 1, true)
    if tonumber(string.sub(cur, 1, sep - 1)) >= version then
      stale = true
    else
      redis.call('ZREM', zkey, string.sub(cur, sep + 1))
    end
  end
  if not stale then
    local member = string.rep('0', 13 - #reached) .. reached .. ':' .. pid
    redis.call('ZADD', zkey, -points, member)
    redis.call('HSET', hkey, pid, version .. '|' .. member)
    if expire_at > 0 then
      redis.call('PEXPIREAT', zkey, expire_at)
      redis.call('PEXPIREAT', hkey, expire_at)
    end
    changed = changed + 1
  end
end
return changed
"""


@dataclass(frozen=True)
class Standing:
    """A player's absolute totals after one credit: what the read model needs, nothing more."""

    player_id: str
    name: str
    region: str
    guild: str | None
    version: int
    total: int
    daily: int
    weekly: int
    at_ms: int

    def boards(self) -> list[str]:
        out = ["global", f"region:{self.region}"]
        if self.guild:
            out.append(f"guild:{self.guild}")
        return out

    @classmethod
    def from_player(cls, doc: dict, now_ms: int) -> "Standing":
        """The standing of a MongoDB player document, for the periods holding `now_ms`."""
        last = int(doc.get("last_ms", 0))
        return cls(
            player_id=doc["_id"],
            name=doc["name"],
            region=doc["region"],
            guild=doc.get("guild"),
            version=int(doc.get("actions", 0)),
            total=int(doc.get("total", 0)),
            daily=int((doc.get("days") or {}).get(day_key(now_ms), 0)),
            weekly=int((doc.get("weeks") or {}).get(week_key(now_ms), 0)),
            at_ms=last,
        )


def period_key(period: str, now_ms: int) -> str:
    if period == "daily":
        return f"d:{day_key(now_ms)}"
    if period == "weekly":
        return f"w:{week_key(now_ms)}"
    return "all"


class BoardStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._apply = redis.register_script(_APPLY)

    @staticmethod
    def key(board: str, period: str, now_ms: int) -> str:
        return f"lb:{board}:{period_key(period, now_ms)}"

    async def apply(self, s: Standing) -> int:
        """Put one standing on every board and period it belongs to; returns entries changed."""
        if s.version <= 0:
            return 0
        keys: list[str] = []
        args: list[object] = [s.player_id, s.version]
        for board in s.boards():
            for period, points in (("all", s.total), ("daily", s.daily), ("weekly", s.weekly)):
                if points <= 0 and period != "all":
                    continue
                zkey = self.key(board, period, s.at_ms)
                keys += [zkey, zkey + ":idx"]
                expire = period_end_ms(period, s.at_ms) + _KEEP_AFTER_END_MS[period] if period != "all" else 0
                args += [points, s.at_ms, expire]
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset("names", s.player_id, s.name)
            await self._apply(keys=keys, args=args, client=pipe)
            results = await pipe.execute()
        return int(results[-1])

    async def set_name(self, player_id: str, name: str) -> None:
        await self._redis.hset("names", player_id, name)

    async def _rows(self, members: list[tuple[bytes, float]], first_rank: int) -> list[dict]:
        if not members:
            return []
        ids = [m.decode().split(":", 1)[1] for m, _ in members]
        names = await self._redis.hmget("names", ids)
        return [
            {
                "rank": first_rank + i,
                "player_id": pid,
                "name": (name.decode() if name else pid),
                "score": int(-score),
            }
            for i, ((_, score), pid, name) in enumerate(zip(members, ids, names))
        ]

    async def page(self, board: str, period: str, offset: int, limit: int, now_ms: int) -> tuple[list[dict], int]:
        key = self.key(board, period, now_ms)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zrange(key, offset, offset + limit - 1, withscores=True)
            pipe.zcard(key)
            members, total = await pipe.execute()
        return await self._rows(members, offset + 1), int(total)

    async def rank(self, board: str, period: str, player_id: str, now_ms: int) -> int | None:
        """1-based rank, or None when the player has no entry on that board."""
        key = self.key(board, period, now_ms)
        cur = await self._redis.hget(key + ":idx", player_id)
        if cur is None:
            return None
        rank = await self._redis.zrank(key, cur.decode().split("|", 1)[1])
        return None if rank is None else int(rank) + 1

    async def around(self, board: str, period: str, player_id: str, limit: int, now_ms: int) -> tuple[list[dict], int] | None:
        rank = await self.rank(board, period, player_id, now_ms)
        if rank is None:
            return None
        total = int(await self._redis.zcard(self.key(board, period, now_ms)))
        start = max(0, min(rank - 1 - limit // 2, total - limit))
        return await self.page(board, period, start, limit, now_ms)

    async def top(self, board: str, now_ms: int, n: int) -> dict[str, list[dict]]:
        return {period: (await self.page(board, period, 0, n, now_ms))[0] for period in PERIODS}

    async def is_empty(self) -> bool:
        return not await self._redis.exists("lb:global:all")
