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
STANDING_FIELDS = 12

# apply_standing(a): `a` holds one standing's STANDING_FIELDS values, in standing_args() order.
APPLY_LUA = """
local function apply_entry(zkey, pid, version, points, reached, expire_at)
  local hkey = zkey .. ':idx'
  local cur = redis.call('HGET', hkey, pid)
  if cur then
    local sep = string.find(cur, '|', 1, true)
    if tonumber(string.sub(cur, 1, sep - 1)) >= version then return 0 end
    redis.call('ZREM', zkey, string.sub(cur, sep + 1))
  end
  local member = string.rep('0', 13 - #reached) .. reached .. ':' .. pid
  redis.call('ZADD', zkey, -points, member)
  redis.call('HSET', hkey, pid, version .. '|' .. member)
  if expire_at > 0 then
    redis.call('PEXPIREAT', zkey, expire_at)
    redis.call('PEXPIREAT', hkey, expire_at)
  end
  return 1
end

local function apply_standing(a)
  local pid, region, guild = a[1], a[2], a[3]
  local version, total, daily, weekly = tonumber(a[4]), tonumber(a[5]), tonumber(a[6]), tonumber(a[7])
  local reached, dpk, wpk, dexp, wexp = a[8], a[9], a[10], tonumber(a[11]), tonumber(a[12])
  local boards = {'global', 'region:' .. region}
  if guild ~= '' then boards[3] = 'guild:' .. guild end
  local changed = 0
  for _, board in ipairs(boards) do
    changed = changed + apply_entry('lb:' .. board .. ':all', pid, version, total, reached, 0)
    if daily > 0 then changed = changed + apply_entry('lb:' .. board .. ':' .. dpk, pid, version, daily, reached, dexp) end
    if weekly > 0 then changed = changed + apply_entry('lb:' .. board .. ':' .. wpk, pid, version, weekly, reached, wexp) end
  end
  return changed
end
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

    def rooms(self) -> list[str]:
        out = [f"region:{self.region}"]
        if self.guild:
            out.append(f"guild:{self.guild}")
        return out

    @classmethod
    def from_player(cls, doc: dict, now_ms: int) -> "Standing":
        """The standing of a MongoDB player document, for the periods holding `now_ms`."""
        return cls(
            player_id=doc["_id"],
            name=doc["name"],
            region=doc["region"],
            guild=doc.get("guild"),
            version=int(doc.get("actions", 0)),
            total=int(doc.get("total", 0)),
            daily=int((doc.get("days") or {}).get(day_key(now_ms), 0)),
            weekly=int((doc.get("weeks") or {}).get(week_key(now_ms), 0)),
            at_ms=int(doc.get("last_ms", 0)),
        )

    def to_fields(self) -> dict[str, str]:
        return {
            "p": self.player_id, "n": self.name, "r": self.region, "g": self.guild or "",
            "v": str(self.version), "t": str(self.total), "d": str(self.daily), "w": str(self.weekly),
            "at": str(self.at_ms),
        }

    @classmethod
    def from_fields(cls, f: dict[bytes, bytes]) -> "Standing":
        s = {k.decode(): v.decode() for k, v in f.items()}
        return cls(s["p"], s["n"], s["r"], s["g"] or None, int(s["v"]), int(s["t"]), int(s["d"]), int(s["w"]),
                   int(s["at"]))


def period_key(period: str, now_ms: int) -> str:
    if period == "daily":
        return f"d:{day_key(now_ms)}"
    if period == "weekly":
        return f"w:{week_key(now_ms)}"
    return "all"


def expire_at(period: str, now_ms: int) -> int:
    return period_end_ms(period, now_ms) + _KEEP_AFTER_END_MS[period]


def standing_args(s: Standing) -> list[object]:
    """The STANDING_FIELDS values APPLY_LUA reads for one standing."""
    return [
        s.player_id, s.region, s.guild or "", s.version, s.total, s.daily, s.weekly, s.at_ms,
        period_key("daily", s.at_ms), period_key("weekly", s.at_ms),
        expire_at("daily", s.at_ms), expire_at("weekly", s.at_ms),
    ]


class BoardStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._apply = redis.register_script(APPLY_LUA + "return apply_standing(ARGV)")

    @staticmethod
    def key(board: str, period: str, now_ms: int) -> str:
        return f"lb:{board}:{period_key(period, now_ms)}"

    async def apply(self, s: Standing) -> int:
        """Put one standing on every board and period it belongs to; returns entries changed.
        The flusher does the same for a batch (app/leaderboard/flusher.py)."""
        if s.version <= 0:
            return 0
        await self.set_name(s.player_id, s.name)
        return int(await self._apply(args=standing_args(s)))

    async def set_name(self, player_id: str, name: str) -> None:
        await self._redis.hset("names", player_id, name)

    async def names(self, ids: list[str]) -> list[str]:
        if not ids:
            return []
        found = await self._redis.hmget("names", ids)
        return [name.decode() if name else pid for pid, name in zip(ids, found)]

    async def rows(self, members: list[tuple[bytes, float]], first_rank: int) -> list[dict]:
        ids = [m.decode().split(":", 1)[1] for m, _ in members]
        names = await self.names(ids)
        return [
            {"rank": first_rank + i, "player_id": pid, "name": name, "score": int(-score)}
            for i, ((_, score), pid, name) in enumerate(zip(members, ids, names))
        ]

    async def page(self, board: str, period: str, offset: int, limit: int, now_ms: int) -> tuple[list[dict], int]:
        key = self.key(board, period, now_ms)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zrange(key, offset, offset + limit - 1, withscores=True)
            pipe.zcard(key)
            members, total = await pipe.execute()
        return await self.rows(members, offset + 1), int(total)

    async def rank(self, board: str, period: str, player_id: str, now_ms: int) -> int | None:
        """1-based rank, or None when the player has no entry on that board."""
        key = self.key(board, period, now_ms)
        cur = await self._redis.hget(key + ":idx", player_id)
        if cur is None:
            return None
        rank = await self._redis.zrank(key, cur.decode().split("|", 1)[1])
        return None if rank is None else int(rank) + 1

    async def rank_for(self, board: str, points: int, now_ms: int) -> int:
        """The rank a score reached now takes: behind everyone with as many points or more."""
        return int(await self._redis.zcount(self.key(board, "all", now_ms), "-inf", -points)) + 1

    async def around(self, board: str, period: str, player_id: str, limit: int, now_ms: int) -> tuple[list[dict], int] | None:
        rank = await self.rank(board, period, player_id, now_ms)
        if rank is None:
            return None
        total = int(await self._redis.zcard(self.key(board, period, now_ms)))
        start = max(0, min(rank - 1 - limit // 2, total - limit))
        return await self.page(board, period, start, limit, now_ms)
