-- Give fetched messages back to the ready list of their priority class (runtime/priorities.py),
-- as Dramatiq's "requeue" does to its one list: only ids still in the ack set, only with a body.
-- KEYS[1] ack set, KEYS[2] bodies hash, KEYS[3] normal list, KEYS[4] critical, KEYS[5] high,
-- KEYS[6] low; ARGV the Redis message ids. A class is in the body's options only when not normal.
local acks, bodies = KEYS[1], KEYS[2]
local lists = {critical = KEYS[4], high = KEYS[5], low = KEYS[6]}
local returned = 0
for i = 1, #ARGV do
  local id = ARGV[i]
  if redis.call("SREM", acks, id) > 0 then
    local body = redis.call("HGET", bodies, id)
    if body then
      local class = string.match(body, '"priority_class"%s*:%s*"(%a+)"')
      redis.call("RPUSH", lists[class] or KEYS[3], id)
      returned = returned + 1
    end
  end
end
return returned
