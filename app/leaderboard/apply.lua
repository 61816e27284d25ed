-- Functions that put standings on boards; the head of apply_one.lua and flush.lua (not run alone).
-- On a Redis Cluster one run serves one board family (app/leaderboard/keys.py family_keys: a
-- board name, its boards of every period, its room's rows and seq, and the family's copies of
-- the per-player state, all in one hash slot): every board write outside the family is skipped,
-- so the caller runs it once per family a standing touches, `global` last (app/leaderboard/
-- boards.py Placement). On one server the family is "*" (keys.py EVERY_FAMILY): one run serves
-- every family, with `global`'s keys, and the families' copies are never written.
-- KEYS[1] the family's placements, KEYS[2] its hidden set, KEYS[3] its erasures, KEYS[4] its
-- generations (for `global` and "*": PLACE_KEY, HIDDEN_KEY, ERASED_KEY, GENERATION_KEY)
-- ARGV[1] JSON context: {"family", "prefixes": {"board", "idx", ...}, ...} (keys.py SCRIPT_PREFIXES)
-- A standing (app/leaderboard/boards.py Standing.script_value) is a JSON object:
--   p player, r region, g guild ("" for none), v version, at reached_ms (a string), m moves,
--   c created_ms (a string), pk [[period, period key, points, expire_at (0: never)], ...] with
--   `all` first, then entries of ended periods (from a rebuild) with two more values: their
--   version (0) and reached_ms (a string); b [[extra board, score, expire_at (0: as it is), reached_ms (a string)], ...]
--   (boards with an all-time board only: a tournament's); h 1 when `global`'s hidden set holds the
--   player, e its erased_ms there (a string; absent when never erased), w its placement there
--   (absent when none), as read just before.
local PLACE, HIDDEN, ERASED, GENERATION = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local CTX = cjson.decode(ARGV[1])
local PFX = CTX.prefixes
local BOARD, IDX, FAMILY = PFX.board, PFX.idx, CTX.family
-- `lb:{<board>}:`, to which a period key is appended (keys.py board()).
local function B(board) return BOARD .. '{' .. board .. '}:' end
local MINE = B(FAMILY)
local EVERY = FAMILY == '*'
local function mine(zkey) return EVERY or string.sub(zkey, 1, #MINE) == MINE end
-- Whether this run publishes `room`'s rows (flush.lua): every room, or its family's own.
local function my_room(room) return EVERY or room == FAMILY end
-- Players taken off as erased by this run.
local erased_now = {}

local function apply_entry(zkey, pid, version, points, reached, expire_at)
  if not mine(zkey) then return 0 end
  local hkey = zkey .. IDX
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

-- An extra board's entry moves only when its score does: a credit that did not count there
-- (outside a tournament's window) keeps the moment its score was reached, the tie rule.
local function apply_extra(zkey, pid, version, points, reached, expire_at)
  if not mine(zkey) then return 0 end
  local cur = redis.call('HGET', zkey .. IDX, pid)
  if cur then
    local sep = string.find(cur, '|', 1, true)
    local member = string.sub(cur, sep + 1)
    if tonumber(string.sub(cur, 1, sep - 1)) < version and tonumber(redis.call('ZSCORE', zkey, member)) == -points then
      redis.call('HSET', zkey .. IDX, pid, version .. '|' .. member)
      return 0
    end
  end
  local changed = apply_entry(zkey, pid, version, points, reached, expire_at or 0)
  if not EVERY and (expire_at or 0) > 0 then
    -- A family of a board that ends (a tournament's, on a cluster): its copies of the
    -- per-player state go with its board (PEXPIREAT leaves a key that is not there alone).
    redis.call('PEXPIREAT', PLACE, expire_at)
    redis.call('PEXPIREAT', GENERATION, expire_at)
  end
  return changed
end

-- Takes the player's entry off one board, whatever its version (a move is not a score).
local function remove_entry(zkey, pid)
  if not mine(zkey) then return 0 end
  local hkey = zkey .. IDX
  local cur = redis.call('HGET', hkey, pid)
  if not cur then return 0 end
  redis.call('ZREM', zkey, string.sub(cur, string.find(cur, '|', 1, true) + 1))
  redis.call('HDEL', hkey, pid)
  return 1
end

-- "<moves>|<region>|<guild>" -> moves, region, guild
local function split_place(was)
  local s1 = string.find(was, '|', 1, true)
  local s2 = string.find(was, '|', s1 + 1, true)
  return tonumber(string.sub(was, 1, s1 - 1)), string.sub(was, s1 + 1, s2 - 1), string.sub(was, s2 + 1)
end

-- The placement to go by: the family's own copy, or `global`'s as read just before (s.w),
-- whichever counts more moves (a family learns of a move only when a standing visits it).
local function place_of(s)
  local was = redis.call('HGET', PLACE, s.p)
  if s.w and (not was or split_place(s.w) > split_place(was)) then return s.w end
  return was
end

-- Off every current board: global, the standing's region and guild and those of the stored
-- placement (they differ when a move is under way), its extra boards, every period the
-- standing or now names. Erased: its placement and its name go too (nothing stays in Redis).
local function take_off(s, now_pks, touch, erased)
  local pid, changed = s.p, 0
  local rooms = {['region:' .. s.r] = true}
  if s.g ~= '' then rooms['guild:' .. s.g] = true end
  local was = place_of(s)
  if was then
    local _, was_region, was_guild = split_place(was)
    rooms['region:' .. was_region] = true
    if was_guild ~= '' then rooms['guild:' .. was_guild] = true end
  end
  local pks = {}
  for _, pk in ipairs(now_pks) do pks[#pks + 1] = pk end
  for _, e in ipairs(s.pk) do pks[#pks + 1] = e[2] end
  for _, pk in ipairs(pks) do changed = changed + remove_entry(B('global') .. pk, pid) end
  for room, _ in pairs(rooms) do
    for _, pk in ipairs(pks) do changed = changed + remove_entry(B(room) .. pk, pid) end
    touch(room)
  end
  for _, e in ipairs(s.b) do
    changed = changed + remove_entry(B(e[1]) .. 'all', pid)
    touch(e[1])
  end
  if erased then
    redis.call('HDEL', PLACE, pid)
    erased_now[#erased_now + 1] = pid  -- its name goes by the caller: NAMES_KEY is in no family
  end
  return changed
end

-- now_pks: the period keys current now ('all' first); touch(room) is called for every room
-- whose board may have changed.
local function apply_standing(s, now_pks, touch)
  local pid, version, moves = s.p, s.v, s.m
  local erased = false
  local erased_at = redis.call('HGET', ERASED, pid)
  -- `global`'s mark, read just before, or this family's own (remove_everywhere.lua), the later.
  if s.e and (not erased_at or tonumber(s.e) > tonumber(erased_at)) then erased_at = s.e end
  if erased_at then
    local gen = redis.call('HGET', GENERATION, pid)
    if tonumber(s.c) <= tonumber(erased_at) then
      -- The erased player's: nothing, if a player created since is the one on the boards now.
      if gen and tonumber(gen) > tonumber(erased_at) then return 0 end
      erased = true
      redis.call('HDEL', GENERATION, pid)
    elseif gen ~= s.c then
      redis.call('HSET', GENERATION, pid, s.c)
    end
  end
  if erased or s.h == 1 or redis.call('SISMEMBER', HIDDEN, pid) == 1 then
    return take_off(s, now_pks, touch, erased)
  end
  local changed = 0
  -- May this standing put the player on its region and guild boards? Not when it was
  -- written before a move we have already applied: its region or guild is an old one.
  local placed = true
  local here = moves .. '|' .. s.r .. '|' .. s.g
  local was = place_of(s)
  if was then
    local was_moves, was_region, was_guild = split_place(was)
    if moves < was_moves then
      placed = false
    elseif moves > was_moves then
      local old = {}
      if was_region ~= s.r then old[#old + 1] = 'region:' .. was_region end
      if was_guild ~= '' and was_guild ~= s.g then old[#old + 1] = 'guild:' .. was_guild end
      -- Off every board that is current now, and off the standing's own periods where it
      -- has points (a flush just past midnight): exactly the boards it goes onto in the new
      -- room. Boards of periods that had ended stay as they were: final.
      local pks = {}
      for _, pk in ipairs(now_pks) do pks[#pks + 1] = pk end
      for i, e in ipairs(s.pk) do
        if i > 1 and e[3] > 0 and not e[5] then pks[#pks + 1] = e[2] end
      end
      for _, board in ipairs(old) do
        for _, pk in ipairs(pks) do changed = changed + remove_entry(B(board) .. pk, pid) end
        touch(board)  -- its watchers see the rows below move up
      end
    end
  end
  -- Equal moves: the same placement (or one from before moves were counted); as it comes.
  if placed and was ~= here then redis.call('HSET', PLACE, pid, here) end
  -- A player with no credit yet has no entry anywhere: only its placement is kept.
  if version <= 0 then return changed end
  -- The global board knows no region or guild: a move leaves it alone, and any standing
  -- (stale about placement or not) may update it by the version rule.
  local boards = {'global'}
  if placed then
    boards[2] = 'region:' .. s.r
    touch(boards[2])
    if s.g ~= '' then boards[3] = 'guild:' .. s.g; touch(boards[3]) end
  end
  for _, board in ipairs(boards) do
    local prefix = B(board)
    for i, e in ipairs(s.pk) do
      -- All-time always; a period only where the player has points in it.
      if i == 1 or e[3] > 0 then
        changed = changed + apply_entry(prefix .. e[2], pid, e[5] or version, e[3], e[6] or s.at, e[4])
      end
    end
  end
  for _, e in ipairs(s.b) do
    changed = changed + apply_extra(B(e[1]) .. 'all', pid, version, e[2], e[4] or s.at, e[3])
    touch(e[1])
  end
  return changed
end
