-- Admission of one action:start in one round trip: the suspension check, the sliding-window
-- rate limit and the difficulty bonus. With KEYS[1] alone it is the rate limit alone.
-- KEYS[1] the rate-limit window (a sorted set: one member per counted hit, scored by its ms)
-- KEYS[2] (optional) SUSPENDED_KEY, the set of suspended players
-- KEYS[3] (optional, with KEYS[2]) BONUS_KEY, the hash player -> difficulty bonus bits
-- ARGV[1] now_ms, ARGV[2] window_ms, ARGV[3] limit, ARGV[4] this hit's member (the action id),
-- ARGV[5] (with KEYS[2]) the player id
-- Returns {suspended, wait_ms, bonus}: suspended 1 refuses before anything is counted; wait_ms
-- 0 when the hit is allowed (and counted), else the ms until one more is; bonus the hash's
-- value as stored (clamped by the caller), "" when absent, not asked for or not allowed.
local window_key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
if KEYS[2] and redis.call('SISMEMBER', KEYS[2], ARGV[5]) == 1 then
  return {1, 0, ''}
end
redis.call('ZREMRANGEBYSCORE', window_key, '-inf', now - window)
local used = redis.call('ZCARD', window_key)
if used >= limit then
  local oldest = redis.call('ZRANGE', window_key, 0, 0, 'WITHSCORES')
  local wait = tonumber(oldest[2]) + window - now
  if wait < 1 then wait = 1 end
  return {0, wait, ''}
end
redis.call('ZADD', window_key, now, ARGV[4])
redis.call('PEXPIRE', window_key, window)
local bonus = ''
if KEYS[3] then bonus = redis.call('HGET', KEYS[3], ARGV[5]) or '' end
return {0, 0, bonus}
