-- Renews the flush lease if the caller still holds it.
-- KEYS[1] LEASE_KEY; ARGV[1] holder, ARGV[2] the lease's life (ms). Returns 1 if renewed, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
