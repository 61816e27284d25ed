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

Hidden and erased players (PROTOCOL.md 9) are kept off the boards by the same script that puts
players on them, so no standing, however late, brings one back: a standing of a player in
HIDDEN_KEY, or of a player erased after the document it was read from was created (ERASED_KEY
holds player -> erased_ms; the standing carries the document's `created_ms`), takes the player
off every current board (global, its region, its guild; all-time, today, this week) and touches
its rooms, so their watchers see the rows below move up. A player created again after its
erasure has a later `created_ms` and goes on the boards as a new player. MongoDB holds the
truth of both (the `hidden` flag, the `erasures` collection); a rebuild marks them again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from redis.asyncio import Redis

from app.clock import day_key, period_end_ms, week_key

PERIODS = ("all", "daily", "weekly")
# Period keys outlive their period by this much, then Redis drops them.
_KEEP_AFTER_END_MS = {"daily": 2 * 86_400_000, "weekly": 8 * 86_400_000}
STANDING_FIELDS = 14
# player -> "<moves>|<region>|<guild>": where the player's region and guild entries are, and
# after how many moves. It is what lets a move take the player off its old boards, and what
# tells a standing written before a move (fewer moves) from one written after it.
PLACE_KEY = "lb:place"
# Players an operator hid: never on a board while they are in this set.
HIDDEN_KEY = "lb:hidden"
# player -> erased_ms: standings of a document created at or before that moment are never applied.
ERASED_KEY = "lb:erased"
# player -> created_ms of the player on the boards, for players created again after an erasure
# only: a late standing of the erased one (older than the erasure) then leaves the new one alone.
GENERATION_KEY = "lb:generation"
NAMES_KEY = "names"

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

-- Off every current board: global, the standing's region and guild and those of the stored
-- placement (they differ when a move is under way), every period the standing or now names.
-- Erased: its placement and its name go too (nothing about it stays in Redis).
local function take_off(pid, region, guild, dpk, wpk, now_dpk, now_wpk, touch, erased)
  local changed = 0
  local rooms = {['region:' .. region] = true}
  if guild ~= '' then rooms['guild:' .. guild] = true end
  local was = redis.call('HGET', '""" + PLACE_KEY + """', pid)
  if was then
    local s1 = string.find(was, '|', 1, true)
    local s2 = string.find(was, '|', s1 + 1, true)
    rooms['region:' .. string.sub(was, s1 + 1, s2 - 1)] = true
    local was_guild = string.sub(was, s2 + 1)
    if was_guild ~= '' then rooms['guild:' .. was_guild] = true end
  end
  local periods = {'all', now_dpk, now_wpk, dpk, wpk}
  for _, pk in ipairs(periods) do changed = changed + remove_entry('lb:global:' .. pk, pid) end
  for room, _ in pairs(rooms) do
    for _, pk in ipairs(periods) do changed = changed + remove_entry('lb:' .. room .. ':' .. pk, pid) end
    touch(room)
  end
  if erased then
    redis.call('HDEL', '""" + PLACE_KEY + """', pid)
    redis.call('HDEL', '""" + NAMES_KEY + """', pid)
  end
  return changed
end

local function apply_standing(a, now_dpk, now_wpk, touch)
  local pid, region, guild = a[1], a[2], a[3]
  local version, total, daily, weekly = tonumber(a[4]), tonumber(a[5]), tonumber(a[6]), tonumber(a[7])
  local reached, dpk, wpk, dexp, wexp = a[8], a[9], a[10], tonumber(a[11]), tonumber(a[12])
  local moves, created = tonumber(a[13]), tonumber(a[14])
  local erased = false
  local erased_at = redis.call('HGET', '""" + ERASED_KEY + """', pid)
  if erased_at then
    local gen = redis.call('HGET', '""" + GENERATION_KEY + """', pid)
    if created <= tonumber(erased_at) then
      -- The erased player's: nothing, if a player created since is the one on the boards now.
      if gen and tonumber(gen) > tonumber(erased_at) then return 0 end
      erased = true
      redis.call('HDEL', '""" + GENERATION_KEY + """', pid)
    elseif gen ~= a[14] then
      redis.call('HSET', '""" + GENERATION_KEY + """', pid, a[14])
    end
  end
  if erased or redis.call('SISMEMBER', '""" + HIDDEN_KEY + """', pid) == 1 then
    return take_off(pid, region, guild, dpk, wpk, now_dpk, now_wpk, touch, erased)
  end
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
    # When the player document was created: a standing of a document older than the player's
    # erasure is never applied (ERASED_KEY). 0: unknown, as old as can be.
    created_ms: int = 0

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
            created_ms=int(doc.get("created_ms") or 0),
        )

    def to_fields(self) -> dict[str, str]:
        return {
            "p": self.player_id, "n": self.name, "r": self.region, "g": self.guild or "",
            "v": str(self.version), "t": str(self.total), "d": str(self.daily), "w": str(self.weekly),
            "at": str(self.at_ms), "m": str(self.moves), "c": str(self.created_ms),
        }

    @classmethod
    def from_fields(cls, f: dict[bytes, bytes]) -> Standing:
        s = {k.decode(): v.decode() for k, v in f.items()}
        # "m" and "c" may be absent: entries queued by a release that did not count moves or
        # know erasures.
        return cls(s["p"], s["n"], s["r"], s["g"] or None, int(s["v"]), int(s["t"]), int(s["d"]), int(s["w"]),
                   int(s["at"]), int(s.get("m", "0")), int(s.get("c", "0")))


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
        expire_at("daily", s.at_ms), expire_at("weekly", s.at_ms), s.moves, s.created_ms,
    ]


# KEYS[1] ERASED_KEY; ARGV: player, erased_ms. Keeps the later of two erasure times.
_MARK_ERASED = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur or tonumber(cur) < tonumber(ARGV[2]) then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 1
"""

# ARGV: player, board key prefix ("lb:<board>:"), then period keys. Board keys are built in the
# script (as the flush script does), so they are not declared.
_REMOVE_EVERYWHERE = """
local pid, prefix, removed = ARGV[1], ARGV[2], 0
for i = 3, #ARGV do
  local zkey = prefix .. ARGV[i]
  local cur = redis.call('HGET', zkey .. ':idx', pid)
  if cur then
    redis.call('ZREM', zkey, string.sub(cur, string.find(cur, '|', 1, true) + 1))
    redis.call('HDEL', zkey .. ':idx', pid)
    removed = removed + 1
  end
end
return removed
"""


class BoardStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        # Outside a flush "now" is the standing's own time, and no room is told.
        self._apply = redis.register_script(
            APPLY_LUA + "return apply_standing(ARGV, ARGV[9], ARGV[10], function() end)")
        self._mark_erased = redis.register_script(_MARK_ERASED)
        self._remove_everywhere = redis.register_script(_REMOVE_EVERYWHERE)

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
        await self._redis.hset(NAMES_KEY, player_id, name)

    async def set_hidden(self, player_id: str, hidden: bool) -> None:
        """Mark (or unmark) the player hidden; the caller then applies and queues its standing,
        which takes it off the boards (or puts it back) and tells its rooms."""
        if hidden:
            await self._redis.sadd(HIDDEN_KEY, player_id)
        else:
            await self._redis.srem(HIDDEN_KEY, player_id)

    async def hidden(self) -> set[str]:
        """Every player marked hidden (a handful: operators hide cheaters one by one)."""
        return {_text(m) for m in await self._redis.smembers(HIDDEN_KEY)}

    async def mark_erased(self, erased: dict[str, int]) -> None:
        """player -> erased_ms; never moved back (a later erasure of a re-created player wins)."""
        if not erased:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for player_id, at_ms in erased.items():
                await self._mark_erased(keys=[ERASED_KEY], args=[player_id, at_ms], client=pipe)
            await pipe.execute()

    async def forget(self, player_id: str) -> None:
        """An erased player: its name, placement and hidden mark go from Redis."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hdel(NAMES_KEY, player_id)
            pipe.hdel(PLACE_KEY, player_id)
            pipe.hdel(GENERATION_KEY, player_id)
            pipe.srem(HIDDEN_KEY, player_id)
            await pipe.execute()

    async def remove_everywhere(self, player_id: str, boards: list[str], period_keys: list[str]) -> int:
        """Take the player's entry off each board for each period key ("all", "d:<day>",
        "w:<week>"), ended periods included; the entries removed. For an erasure, which also
        clears the boards of ended days and weeks that the current-board removal leaves final."""
        if not boards or not period_keys:
            return 0
        async with self._redis.pipeline(transaction=False) as pipe:
            for board in boards:
                await self._remove_everywhere(args=[player_id, f"lb:{board}:", *period_keys], client=pipe)
            removed = await pipe.execute()
        return sum(int(n) for n in removed)

    async def names(self, ids: list[str]) -> list[str]:
        if not ids:
            return []
        found = await self._redis.hmget(NAMES_KEY, ids)
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
