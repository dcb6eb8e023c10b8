-- Record progress of a running job; ignored unless the record exists and is STARTED.
-- KEYS[1] = record hash, KEYS[2] = its live-results channel; ARGV = pct, note, now_ms
if redis.call("HGET", KEYS[1], "state") ~= "STARTED" then return 0 end
redis.call("HSET", KEYS[1], "progress", ARGV[1], "progress_note", ARGV[2], "updated_at", ARGV[3])
redis.call("PUBLISH", KEYS[2], "progress")
return 1
