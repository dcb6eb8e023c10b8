-- Cancel a workflow: no step is enqueued from now on. Returns {state before, 1, the steps
-- enqueued and not finished} (the caller cancels their jobs), {state, 0} when it had finished,
-- {false} when there is no such workflow.
-- KEYS[1] workflow hash; ARGV[1] now (ms)
local wf = KEYS[1]
local c = redis.call("HMGET", wf, "state", "total", "finished")
if not c[1] then return {false} end
if c[1] == "SUCCESS" or c[1] == "REVOKED" or tonumber(c[3]) >= tonumber(c[2]) then
  return {c[1], 0}
end
redis.call("HSET", wf, "state", "REVOKED", "completed_at", ARGV[1], "updated_at", ARGV[1])
redis.call("DEL", wf .. ":held")
local out = {c[1], 1}
local enqueued = redis.call("HKEYS", wf .. ":enqueued")
for _, step in ipairs(enqueued) do
  if redis.call("HEXISTS", wf .. ":outcome", step) == 0 then
    out[#out + 1] = step
  end
end
return out
