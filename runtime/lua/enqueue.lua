-- (transition_fn.lua is prepended.) Enqueue a message and create its job record in one round
-- trip, instead of one for the record and one for the message.
-- KEYS[1] record hash, KEYS[2] record key prefix, KEYS[3] queue list, KEYS[4] queue bodies hash,
-- KEYS[5] (optional) the queue's wake list: one token on it wakes an idle worker (runtime/wake.py)
-- ARGV[1] Redis message id, ARGV[2] body, ARGV[3...] the record transition's arguments
-- (mode "create": a retry or a delayed message moved to its queue leaves the record alone).
-- The message part does what Dramatiq's dispatch script does for "enqueue".
redis.call("HSET", KEYS[4], ARGV[1], ARGV[2])
redis.call("RPUSH", KEYS[3], ARGV[1])
if KEYS[5] then
  redis.call("LPUSH", KEYS[5], 1)
  redis.call("LTRIM", KEYS[5], 0, 0)
end
local a = {}
for i = 3, #ARGV do a[#a + 1] = ARGV[i] end
return transition(KEYS[1], KEYS[2], a)
