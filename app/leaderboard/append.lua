-- Appends standings to the delta queue; may also answer the rank the first one's total takes.
-- KEYS[1] STREAM, KEYS[2] LOST_KEY (one hash slot)
-- ARGV[1] the cap (XADD MAXLEN ~), ARGV[2] unused (""),
-- then per entry: its number of arguments, then its field/value pairs.
-- Appending n entries grows the stream by n unless the cap trimmed some: then, in the same
-- atomic step, the loss is recorded. Returns the number appended. (The rank a standing takes
-- is asked beside it, in the same round trip: a board is in another hash slot.)
local cap = ARGV[1]
local before = redis.call('XLEN', KEYS[1])
local added, i = 0, 3
while i <= #ARGV do
  local width = tonumber(ARGV[i])
  local entry = {}
  for j = 1, width do entry[j] = ARGV[i + j] end
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', cap, '*', unpack(entry))
  added = added + 1
  i = i + width + 1
end
if redis.call('XLEN', KEYS[1]) < before + added then redis.call('SET', KEYS[2], '1') end
return added
