-- Takes one player's entry off each board key given, whatever its version.
-- KEYS: board keys (`lb:<board>:<period key>`, app/leaderboard/keys.py); ARGV[1] player,
-- ARGV[2] the index suffix (a board key's index is the key followed by it).
-- Returns the number of entries removed.
local pid, idx, removed = ARGV[1], ARGV[2], 0
for _, zkey in ipairs(KEYS) do
  local cur = redis.call('HGET', zkey .. idx, pid)
  if cur then
    redis.call('ZREM', zkey, string.sub(cur, string.find(cur, '|', 1, true) + 1))
    redis.call('HDEL', zkey .. idx, pid)
    removed = removed + 1
  end
end
return removed
