-- Claim one tick of one schedule entry, atomically: the first clock to claim a tick wins, and a
-- tick at or before the entry's last claimed tick is never claimed again (restarts, two clocks).
-- KEYS[1] = entry hash (gaveurs:scheduler:entry:{name})
-- ARGV = tick_ms, field, value, ...   (fields stored with the claim: task_id, kind, ...)
-- Returns 1 when this call claimed the tick, 0 when it was already claimed.
local key, tick = KEYS[1], tonumber(ARGV[1])
local last = tonumber(redis.call("HGET", key, "last_tick_ms") or "-1")
if tick <= last then return 0 end
local fields = {"last_tick_ms", tick}
for i = 2, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call("HSET", key, unpack(fields))
redis.call("HDEL", key, "outcome")
return 1
