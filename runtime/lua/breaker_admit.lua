-- Admit a call through a provider's circuit breaker, atomically (one round trip).
-- KEYS[1] breaker hash, KEYS[2] probe key; ARGV[1] threshold, ARGV[2] open period (ms).
-- Returns 0: closed, call; 1: half-open, this call is the probe; -1: open, wait.
-- Time is Redis server time, so workers on machines with skewed clocks agree.
local failures = tonumber(redis.call('HGET', KEYS[1], 'failures') or '0')
if failures < tonumber(ARGV[1]) then
  return 0
end
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until_ms') or '0')
if now_ms < open_until then
  return -1
end
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2]) then
  return 1
end
return -1
