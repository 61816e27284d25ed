"""Sorted sets per board and period; knows Redis keys, nothing of rooms or sockets.

A board holds `score = -points` and `member = "<reached_ms:013>:<player_id>"`, so Redis's
own order (score, then member bytes) is: most points first, then who reached that score
first. Entries are absolute totals stamped with a version (the player's credited-action
count); an entry only replaces an older version, which makes applying the same update
twice, or out of order, a no-op.

Placement (which region and guild boards a player is on) is ordered the same way by the
player's `moves` count: a standing with more moves than the stored placement takes the player
off its old region's and guild's current boards first; one with fewer moves was written before
a move already applied and never puts the player back on an old board. So a player is on one
region board and at most one guild board per period, whatever order standings arrive in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from redis.asyncio import Redis

from app.clock import day_key, period_end_ms, week_key

PERIODS = ("all", "daily", "weekly")
# Period keys outlive their period by this much, then Redis drops them.
_KEEP_AFTER_END_MS = {"daily": 2 * 86_400_000, "weekly": 8 * 86_400_000}
STANDING_FIELDS = 13
# player -> "<moves>|<region>|<guild>": where the player's region and guild entries are, and
# after how many moves. It is what lets a move take the player off its old boards, and what
# tells a standing written before a move (fewer moves) from one written after it.
PLACE_KEY = "lb:place"

# apply_standing(a, now_dpk, now_wpk, touch): `a` holds one standing's STANDING_FIELDS values,
# in standing_args() order; now_dpk / now_wpk are the current day's and week's period keys;
# touch(room) is called for every room whose board may have changed.
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

-- Takes the player's entry off one board, whatever its version (a move is not a score).
local function remove_entry(zkey, pid)
  local hkey = zkey .. ':idx'
  local cur = redis.call('HGET', hkey, pid)
  if not cur then return 0 end
  redis.call('ZREM', zkey, string.sub(cur, string.find(cur, '|', 1, true) + 1))
  redis.call('HDEL', hkey, pid)
  return 1
end

local function apply_standing(a, now_dpk, now_wpk, touch)
  local pid, region, guild = a[1], a[2], a[3]
  local version, total, daily, weekly = tonumber(a[4]), tonumber(a[5]), tonumber(a[6]), tonumber(a[7])
  local reached, dpk, wpk, dexp, wexp = a[8], a[9], a[10], tonumber(a[11]), tonumber(a[12])
  local moves = tonumber(a[13])
  local changed = 0
  -- May this standing put the player on its region and guild boards? Not when it was
  -- written before a move we have already applied: its region or guild is an old one.
  local placed = true
  local here = moves .. '|' .. region .. '|' .. guild
  local was = redis.call('HGET', '""" + PLACE_KEY + """', pid)
  if was then
    local s1 = string.find(was, '|', 1, true)
    local s2 = string.find(was, '|', s1 + 1, true)
    local was_moves = tonumber(string.sub(was, 1, s1 - 1))
    if moves < was_moves then
      placed = false
    elseif moves > was_moves then
      local old = {}
      local was_region, was_guild = string.sub(was, s1 + 1, s2 - 1), string.sub(was, s2 + 1)
      if was_region ~= region then old[#old + 1] = 'region:' .. was_region end
      if was_guild ~= '' and was_guild ~= guild then old[#old + 1] = 'guild:' .. was_guild end
      -- Off every board that is current now, and off the standing's own day and week when it
      -- has points there (a flush just past midnight): exactly the boards it goes onto in the
      -- new room. Boards of periods that had ended stay as they were: final.
      local periods = {'all', now_dpk, now_wpk}
      if daily > 0 then periods[#periods + 1] = dpk end
      if weekly > 0 then periods[#periods + 1] = wpk end
      for _, board in ipairs(old) do
        for _, pk in ipairs(periods) do changed = changed + remove_entry('lb:' .. board .. ':' .. pk, pid) end
        touch(board)  -- its watchers see the rows below move up
      end
    end
  end
  -- Equal moves: the same placement (or one from before moves were counted); as it comes.
  if placed and was ~= here then redis.call('HSET', '""" + PLACE_KEY + """', pid, here) end
  -- A player with no credit yet has no entry anywhere: only its placement is kept.
  if version <= 0 then return changed end
  -- The global board knows no region or guild: a move leaves it alone, and any standing
  -- (stale about placement or not) may update it by the version rule.
  local boards = {'global'}
  if placed then
    boards[2] = 'region:' .. region
    touch(boards[2])
    if guild ~= '' then boards[3] = 'guild:' .. guild; touch(boards[3]) end
  end
  for _, board in ipairs(boards) do
    local prefix = 'lb:' .. board .. ':'
    changed = changed + apply_entry(prefix .. 'all', pid, version, total, reached, 0)
    if daily > 0 then changed = changed + apply_entry(prefix .. dpk, pid, version, daily, reached, dexp) end
    if weekly > 0 then changed = changed + apply_entry(prefix .. wpk, pid, version, weekly, reached, wexp) end
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
    # How many times the player's region or guild had changed (the player document's `moves`):
    # orders standings about placement, as `version` orders them about points.
    moves: int = 0

    def rooms(self) -> list[str]:
        out = [f"region:{self.region}"]
        if self.guild:
            out.append(f"guild:{self.guild}")
        return out

    @classmethod
    def from_player(cls, doc: dict, now_ms: int) -> Standing:
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
            moves=int(doc.get("moves", 0)),
        )

    def to_fields(self) -> dict[str, str]:
        return {
            "p": self.player_id, "n": self.name, "r": self.region, "g": self.guild or "",
            "v": str(self.version), "t": str(self.total), "d": str(self.daily), "w": str(self.weekly),
            "at": str(self.at_ms), "m": str(self.moves),
        }

    @classmethod
    def from_fields(cls, f: dict[bytes, bytes]) -> Standing:
        s = {k.decode(): v.decode() for k, v in f.items()}
        # "m" may be absent: entries queued by a release that did not count moves.
        return cls(s["p"], s["n"], s["r"], s["g"] or None, int(s["v"]), int(s["t"]), int(s["d"]), int(s["w"]),
                   int(s["at"]), int(s.get("m", "0")))


def _text(value: bytes | str) -> str:
    # redis-py types replies as bytes or str (decode_responses); this client never decodes.
    return value.decode() if isinstance(value, bytes) else value


def period_key(period: str, now_ms: int) -> str:
    if period == "daily":
        return f"d:{day_key(now_ms)}"
    if period == "weekly":
        return f"w:{week_key(now_ms)}"
    return "all"


def expire_at(period: str, now_ms: int) -> int:
    return period_end_ms(period, now_ms) + _KEEP_AFTER_END_MS[period]


def standing_args(s: Standing) -> list[str | int]:
    """The STANDING_FIELDS values APPLY_LUA reads for one standing."""
    return [
        s.player_id, s.region, s.guild or "", s.version, s.total, s.daily, s.weekly, s.at_ms,
        period_key("daily", s.at_ms), period_key("weekly", s.at_ms),
        expire_at("daily", s.at_ms), expire_at("weekly", s.at_ms), s.moves,
    ]


class BoardStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        # Outside a flush "now" is the standing's own time, and no room is told.
        self._apply = redis.register_script(
            APPLY_LUA + "return apply_standing(ARGV, ARGV[9], ARGV[10], function() end)")

    @staticmethod
    def key(board: str, period: str, now_ms: int) -> str:
        return f"lb:{board}:{period_key(period, now_ms)}"

    async def apply(self, s: Standing) -> int:
        """Put one standing on every board and period it belongs to (taking the player off its
        old region's and guild's boards when it has moved); returns entries changed. The flusher
        does the same for a batch (app/leaderboard/flusher.py)."""
        if s.version <= 0 and s.moves <= 0:
            return 0
        await self.set_name(s.player_id, s.name)
        return int(await self._apply(args=standing_args(s)))

    async def set_name(self, player_id: str, name: str) -> None:
        await self._redis.hset("names", player_id, name)

    async def names(self, ids: list[str]) -> list[str]:
        if not ids:
            return []
        found = await self._redis.hmget("names", ids)
        return [_text(name) if name else pid for pid, name in zip(ids, found, strict=True)]

    async def rows(self, members: list[tuple[bytes, float]], first_rank: int) -> list[dict]:
        ids = [m.decode().split(":", 1)[1] for m, _ in members]
        names = await self.names(ids)
        return [
            {"rank": first_rank + i, "player_id": pid, "name": name, "score": int(-score)}
            for i, ((_, score), pid, name) in enumerate(zip(members, ids, names, strict=True))
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
        # Without WITHSCORE the reply is the rank alone (redis-py types both shapes).
        rank = cast(int | None, await self._redis.zrank(key, _text(cur).split("|", 1)[1]))
        return None if rank is None else rank + 1

    async def rank_for(self, board: str, points: int, now_ms: int) -> int:
        """The rank a score reached now takes: behind everyone with as many points or more."""
        return int(await self._redis.zcount(self.key(board, "all", now_ms), "-inf", -points)) + 1

    async def around(self, board: str, period: str, player_id: str, limit: int,
                     now_ms: int) -> tuple[list[dict], int] | None:
        rank = await self.rank(board, period, player_id, now_ms)
        if rank is None:
            return None
        total = int(await self._redis.zcard(self.key(board, period, now_ms)))
        start = max(0, min(rank - 1 - limit // 2, total - limit))
        return await self.page(board, period, start, limit, now_ms)
