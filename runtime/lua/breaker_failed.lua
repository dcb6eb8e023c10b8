-- Count a provider failure; at the threshold open the breaker for the open period, atomically,
-- so no other worker can see "threshold reached" without the matching open_until.
-- KEYS[1] breaker hash, KEYS[2] probe key; ARGV[1] threshold, ARGV[2] open period (ms).
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
if failures >= tonumber(ARGV[1]) then
  local t = redis.call('TIME')
  local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('HSET', KEYS[1], 'open_until_ms', now_ms + tonumber(ARGV[2]))
  redis.call('DEL', KEYS[2])
end
return failures
