-- Fetch up to N messages for one consumer, atomically, keeping each message's Redis id with it.
-- KEYS[1] queue list, KEYS[2] bodies hash, KEYS[3] this consumer's ack set,
-- KEYS[4] heartbeats zset, KEYS[5] dead-letter zset, KEYS[6] dead-letter bodies hash,
-- KEYS[7] critical list, KEYS[8] high list, KEYS[9] low list (KEYS[1] holds the normal class)
-- ARGV[1] how many, ARGV[2] broker id, ARGV[3] now (ms, the caller's clock as Dramatiq uses),
-- ARGV[4] largest body accepted (bytes), ARGV[5] this consumer's turn in the round
--
-- Returns one entry per message taken off the list:
--   {redis_id, body}                               a message to run
--   {redis_id, "", 0}                              the id had no body (acked elsewhere): dropped
--   {redis_id, "", size, message_id, actor_name}   too large: dead-lettered here, never sent
-- Dramatiq's own fetch returns bodies only, so a body that cannot be decoded cannot be acked or
-- dead-lettered by id; and it ships any body, however large, into the worker's memory.
--
-- Priority classes (runtime/priorities.py): each pop takes the class whose turn it is in a round
-- of 15 (8 critical, 4 high, 2 normal, 1 low, interleaved); a turn whose list is empty goes to
-- the highest class with messages waiting. Lengths are read once: the script is atomic.
local queue, bodies, acks = KEYS[1], KEYS[2], KEYS[3]
local heartbeats, dead, dead_bodies = KEYS[4], KEYS[5], KEYS[6]
local count, broker_id, now, max_bytes =
  tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])

local lists = {KEYS[7], KEYS[8], queue, KEYS[9]}
local ROUND = {1, 2, 1, 3, 1, 2, 1, 4, 1, 2, 1, 3, 1, 2, 1}
local turn = tonumber(ARGV[5])

redis.call("ZADD", heartbeats, now, broker_id)
local waiting = {}
local total = 0
for c = 1, 4 do
  waiting[c] = redis.call("LLEN", lists[c])
  total = total + waiting[c]
end
local out = {}
for i = 1, math.min(count, total) do
  local class = ROUND[(turn + i - 1) % 15 + 1]
  if waiting[class] == 0 then
    for c = 1, 4 do
      if waiting[c] > 0 then class = c; break end
    end
  end
  waiting[class] = waiting[class] - 1
  local id = redis.call("LPOP", lists[class])
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
