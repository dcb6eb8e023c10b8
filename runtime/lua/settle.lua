-- (transition_fn.lua is prepended.) Acknowledge or dead-letter a message and write its job
-- record's end in one round trip, instead of one for the record and one for the ack.
-- KEYS[1] record hash, KEYS[2] record key prefix, KEYS[3] the consumer's ack set,
-- KEYS[4] queue bodies hash, KEYS[5] dead-letter zset, KEYS[6] dead-letter bodies hash,
-- KEYS[7] heartbeats zset
-- ARGV[1] "ack" | "nack", ARGV[2] Redis message id, ARGV[3] now (ms), ARGV[4] broker id,
-- ARGV[5...] the transition's arguments.
-- The ack and the dead-lettering do what Dramatiq's dispatch script does for them.
local command, id, now, broker_id = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
redis.call("ZADD", KEYS[7], now, broker_id)
if redis.call("SREM", KEYS[3], id) > 0 then
  if command == "nack" then
    local body = redis.call("HGET", KEYS[4], id)
    if body then
      redis.call("ZADD", KEYS[5], now, id)
      redis.call("HSET", KEYS[6], id, body)
    end
  end
  redis.call("HDEL", KEYS[4], id)
end
local a = {}
for i = 5, #ARGV do a[#a + 1] = ARGV[i] end
return transition(KEYS[1], KEYS[2], a)
