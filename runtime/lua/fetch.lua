-- Fetch up to N messages for one consumer, atomically, keeping each message's Redis id with it.
-- KEYS[1] queue list, KEYS[2] bodies hash, KEYS[3] this consumer's ack set,
-- KEYS[4] heartbeats zset, KEYS[5] dead-letter zset, KEYS[6] dead-letter bodies hash
-- ARGV[1] how many, ARGV[2] broker id, ARGV[3] now (ms, the caller's clock as Dramatiq uses),
-- ARGV[4] largest body accepted (bytes)
--
-- Returns one entry per message taken off the list:
--   {redis_id, body}                               a message to run
--   {redis_id, "", 0}                              the id had no body (acked elsewhere): dropped
--   {redis_id, "", size, message_id, actor_name}   too large: dead-lettered here, never sent
-- Dramatiq's own fetch returns bodies only, so a body that cannot be decoded cannot be acked or
-- dead-lettered by id; and it ships any body, however large, into the worker's memory.
local queue, bodies, acks = KEYS[1], KEYS[2], KEYS[3]
local heartbeats, dead, dead_bodies = KEYS[4], KEYS[5], KEYS[6]
local count, broker_id, now, max_bytes =
  tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])

redis.call("ZADD", heartbeats, now, broker_id)
local out = {}
for _ = 1, count do
  local id = redis.call("LPOP", queue)
  if not id then break end
  local size = redis.call("HSTRLEN", bodies, id)
  if size == 0 then
    out[#out + 1] = {id, "", 0}
  elseif size > max_bytes then
    local body = redis.call("HGET", bodies, id)
    redis.call("ZADD", dead, now, id)
    redis.call("HSET", dead_bodies, id, body)
    redis.call("HDEL", bodies, id)
    local message_id = string.match(body, '"message_id"%s*:%s*"([^"]+)"') or ""
    local actor = string.match(body, '"actor_name"%s*:%s*"([^"]+)"') or ""
    out[#out + 1] = {id, "", size, message_id, actor}
  elseif redis.call("SADD", acks, id) == 1 then
    out[#out + 1] = {id, redis.call("HGET", bodies, id)}
  end
  -- (SADD answered 0: the id was pushed twice and this consumer already holds it; skip it.)
end
return out
