-- Claim a uniqueness key for a message, or say which active job holds it. One round trip.
-- KEYS[1] uniqueness key; ARGV[1] message id, ARGV[2] ttl (ms), ARGV[3] job record key prefix
-- ("gaveurs:jobs:job:"), ARGV[4] grace (ms) before a holder without a record counts as lost,
-- ARGV[5] "until_started" (debounce: only a holder still PENDING holds the key) or empty.
-- Returns the id of the job that holds the key afterwards (ARGV[1] when claimed).
-- A holder whose job has ended (its record says SUCCESS, FAILURE or REVOKED) no longer holds
-- the key, even if its release has not run yet (the record is written first) or never will
-- (its worker died in between): without this, a resubmission right after SUCCESS is answered
-- with the finished job, and a crash there blocks the key for its whole TTL.
local key, id, ttl = KEYS[1], ARGV[1], tonumber(ARGV[2])
local holder = redis.call("GET", key)
if not holder then
  redis.call("SET", key, id, "PX", ttl)
  return id
end
if holder == id then return id end
local state = redis.call("HGET", ARGV[3] .. holder, "state")
local ended = state == "SUCCESS" or state == "FAILURE" or state == "REVOKED"
if state and ARGV[5] == "until_started" then ended = state ~= "PENDING" end
if not state then
  -- No record: either its enqueue is under way (the record follows within milliseconds) or it
  -- expired long ago. Only the second frees the key.
  ended = ttl - redis.call("PTTL", key) > tonumber(ARGV[4])
end
if ended then
  redis.call("SET", key, id, "PX", ttl)
  return id
end
return holder
