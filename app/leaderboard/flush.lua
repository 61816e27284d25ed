-- One board family's part of a flush (follows apply.lua; app/leaderboard/flusher.py), or on one
-- server every family's at once (family "*"): the part of the batch applied to the boards, then,
-- for each room a standing touched or a rollover names, its top rows diffed against those last
-- published, stored, and its seq bumped. Everything one run touches is in its family's hash slot,
-- so each part is atomic on a Redis Cluster as on one server.
-- KEYS[1..4] as apply.lua: the family's placements, hidden set, erasures, generations
-- ARGV[1] JSON context: {"family", "prefixes", "now", "topn",
--   "periods": [[period, current period key, published rows' expire_at (0: renewed on touch)], ...]
--   with `all` first, "keep" (a room's keys' life, ms), "all_only": [room name prefixes whose
--   rooms show an all-time board only], "rolled": [rooms of this run a rollover touches]}
-- ARGV[2] JSON array of standings (as apply.lua describes): those of players the run may hold.
-- Returns JSON {"live": [room, ...] a standing touched, "deltas": [{"room", "seq", "boards":
-- [{"period", "reset", "rows": [[rank, member, score], ...]}, ...]}, ...], "erased": [player, ...]}
-- (an empty list may come back as {} or be absent).
local PUB, PUBPK, SEQ = PFX.pub, PFX.pubpk, PFX.seq
local now, topn, periods = tonumber(CTX.now), CTX.topn, CTX.periods
local now_pks = {}
for i, per in ipairs(periods) do now_pks[i] = per[2] end

-- live: a standing (or a move) touched the room; a rollover alone does not make it active,
-- or idle rooms would be touched forever.
local live, touched = {}, {}
local function touch(name)
  if my_room(name) and not live[name] then live[name] = true; touched[#touched + 1] = name end
end
for _, s in ipairs(cjson.decode(ARGV[2])) do apply_standing(s, now_pks, touch) end
local out = {live = touched, deltas = {}}
if #erased_now > 0 then out.erased = erased_now end
local rooms = {}
for _, room in ipairs(touched) do rooms[#rooms + 1] = room end
for _, room in ipairs(CTX.rolled) do
  if not live[room] then rooms[#rooms + 1] = room end
end

local function publish(room)
  local room_periods = periods
  for _, prefix in ipairs(CTX.all_only) do
    if string.sub(room, 1, #prefix) == prefix then room_periods = {periods[1]} end
  end
  local pubtag = '{' .. room .. '}'
  local changes = {}
  for _, per in ipairs(room_periods) do
    local name, pk, pub_expire = per[1], per[2], per[3]
    local pubkey = PUB .. pubtag .. ':' .. pk
    local reset = false
    local was = redis.call('HGET', PUBPK .. pubtag, name)
    if name ~= 'all' and was and was ~= pk then
      if redis.call('EXISTS', PUB .. pubtag .. ':' .. was) == 1 then reset = true end
      redis.call('DEL', PUB .. pubtag .. ':' .. was)
    end
    redis.call('HSET', PUBPK .. pubtag, name, pk)
    local top = redis.call('ZRANGE', B(room) .. pk, 0, topn - 1, 'WITHSCORES')
    -- Fewer rows than were published: a player left the board (moved away). A delta can
    -- replace a row but not remove one, so the board goes out whole, as after a rollover.
    if redis.call('HLEN', pubkey) > #top / 2 then
      reset = true
      redis.call('DEL', pubkey)
    end
    local rows = {}
    for r = 1, #top / 2 do
      local member, score = top[2 * r - 1], top[2 * r]
      local value = member .. ' ' .. score
      if reset or redis.call('HGET', pubkey, r) ~= value then
        redis.call('HSET', pubkey, r, value)
        rows[#rows + 1] = {r, member, score}
      end
    end
    if pub_expire > 0 and redis.call('EXISTS', pubkey) == 1 then redis.call('PEXPIREAT', pubkey, pub_expire) end
    if #rows > 0 or reset then changes[#changes + 1] = {period = name, reset = reset, rows = rows} end
  end
  local seqkey = SEQ .. pubtag
  if #changes > 0 then
    redis.call('SET', seqkey, now, 'NX')
    out.deltas[#out.deltas + 1] = {room = room, seq = redis.call('INCR', seqkey), boards = changes}
  end
  -- Renewed on every touch; the period boards' published rows keep their own, shorter expiry.
  redis.call('PEXPIREAT', PUB .. pubtag .. ':all', now + CTX.keep)
  redis.call('PEXPIREAT', PUBPK .. pubtag, now + CTX.keep)
  redis.call('PEXPIREAT', seqkey, now + CTX.keep)
end

for _, room in ipairs(rooms) do publish(room) end
return cjson.encode(out)
