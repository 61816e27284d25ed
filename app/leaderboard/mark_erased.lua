-- Records a player's erasure, keeping the later of two erasure times.
-- KEYS[1] ERASED_KEY (player -> erased_ms); ARGV[1] player, ARGV[2] erased_ms. Returns 1.
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur or tonumber(cur) < tonumber(ARGV[2]) then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 1
