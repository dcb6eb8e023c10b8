-- Give back a uniqueness key claimed for a message whose enqueue failed (the connection dropped,
-- a failover), unless the enqueue went through after all: the key must not name a job that
-- never was, or every resubmission within the claim grace would get that phantom's id.
-- KEYS[1] uniqueness key, KEYS[2] the message's job record; ARGV[1] message id.
if redis.call("GET", KEYS[1]) == ARGV[1] and redis.call("EXISTS", KEYS[2]) == 0 then
  return redis.call("DEL", KEYS[1])
end
return 0
