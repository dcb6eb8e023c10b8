-- Acknowledge or dead-letter a message and write its job record's end, as a function other
-- scripts call (settle.lua on its own, batch.lua with other threads' writes); transition_fn.lua
-- comes before it. k = keys, a = arguments, as settle.lua describes them.
-- The ack and the dead-lettering do what Dramatiq's dispatch script does for them.
local function settle(k, a)
  local command, id, now, broker_id = a[1], a[2], tonumber(a[3]), a[4]
  redis.call("ZADD", k[7], now, broker_id)
  if redis.call("SREM", k[3], id) > 0 then
    if command == "nack" then
      local body = redis.call("HGET", k[4], id)
      if body then
        redis.call("ZADD", k[5], now, id)
        redis.call("HSET", k[6], id, body)
      end
    end
    redis.call("HDEL", k[4], id)
  end
  local t = {}
  for i = 5, #a do t[#t + 1] = a[i] end
  return transition(k[1], k[2], t)
end
