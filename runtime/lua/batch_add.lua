-- Add an item to the pending run of a batched job, or open a new run for it. One round trip.
-- KEYS[1] the job's batch key (names its pending run). ARGV[1] new task id, ARGV[2] that key's
-- ttl (ms), ARGV[3] job record key prefix, ARGV[4] grace (ms) before a holder without a record
-- counts as lost, ARGV[5] items key prefix, ARGV[6] items ttl (ms), ARGV[7] max items per run,
-- ARGV[8] the item (JSON).
-- Returns {task id of the run that takes the item, 1 when that run is new: the caller enqueues
-- it}. A run takes items while its record is PENDING: the worker writes STARTED before it reads
-- them, in another script, so an item is either read by the run or makes a new one.
local key, id, ttl = KEYS[1], ARGV[1], tonumber(ARGV[2])
local holder = redis.call("GET", key)
if holder then
  local state = redis.call("HGET", ARGV[3] .. holder, "state")
  local pending = state == "PENDING"
  if not state then
    pending = ttl - redis.call("PTTL", key) <= tonumber(ARGV[4])
  end
  local items = ARGV[5] .. holder
  if pending and redis.call("LLEN", items) < tonumber(ARGV[7]) then
    redis.call("RPUSH", items, ARGV[8])
    return {holder, 0}
  end
end
redis.call("SET", key, id, "PX", ttl)
redis.call("RPUSH", ARGV[5] .. id, ARGV[8])
redis.call("PEXPIRE", ARGV[5] .. id, tonumber(ARGV[6]))
return {id, 1}
