-- (transition_fn.lua and workflow_fn.lua are prepended.) Create a workflow and enqueue its
-- first steps, atomically: a client that retries this call (timeout, Redis stall) creates it
-- once, and no step can finish before the whole graph is in Redis.
-- KEYS[1] record key prefix ("gaveurs:jobs:")
-- ARGV[1] workflow id, ARGV[2] now (ms), ARGV[3] retention (ms), ARGV[4] policy, ARGV[5] name,
-- ARGV[6] "" to submit; to rebuild a workflow Redis lost (runtime/lost_jobs.py), a JSON object
-- step -> the final state the job journal knows for it,
-- then 4 per step: name, number of dependencies, JSON list of dependents or "", spec JSON.
-- Returns 1 when created, 0 when a workflow with this id already exists.
local prefix, id = KEYS[1], ARGV[1]
local now, retention = tonumber(ARGV[2]), tonumber(ARGV[3])
local wf = prefix .. "wf:" .. id
if redis.call("EXISTS", wf) == 1 then return 0 end
local total = (#ARGV - 6) / 4
redis.call("HSET", wf, "state", "RUNNING", "policy", ARGV[4], "name", ARGV[5], "total", total,
  "finished", 0, "failed", 0, "created_at", now, "updated_at", now)
local roots = {}
for i = 7, #ARGV, 4 do
  local step = ARGV[i]
  redis.call("HSET", wf .. ":spec", step, ARGV[i + 3])
  redis.call("HSET", wf .. ":deps", step, ARGV[i + 1])
  if ARGV[i + 2] ~= "" then redis.call("HSET", wf .. ":children", step, ARGV[i + 2]) end
  if ARGV[i + 1] == "0" then roots[#roots + 1] = step end
end
if ARGV[6] ~= "" then
  -- Rebuilding: the finished steps are never enqueued again; their records come back with
  -- their journaled end (without their results), and their ends advance the workflow, which
  -- enqueues what had become ready. Every finished step is marked before any advances, so the
  -- order of the ends does not matter.
  local finished = cjson.decode(ARGV[6])
  local rank = {SUCCESS = 2, FAILURE = 2, REVOKED = 3}
  for step, state in pairs(finished) do
    redis.call("HSET", wf .. ":enqueued", step, now)
    local spec = cjson.decode(redis.call("HGET", wf .. ":spec", step))
    local a = {spec.task, state, 0, rank[state] or 2, now, math.floor(retention / 1000), "create",
      retention, "completed_at", now, "progress", 100}
    for _, value in ipairs(spec.fields) do a[#a + 1] = value end
    transition(prefix .. "job:" .. spec.task, prefix, a)
  end
  for step, state in pairs(finished) do
    advance_workflow(prefix, id, step, state, now, retention)
  end
end
for _, step in ipairs(roots) do enqueue_step(prefix, wf, step, now, retention) end
local ttl = math.floor(retention / 1000)
for _, suffix in ipairs({"", ":spec", ":deps", ":children", ":enqueued", ":outcome"}) do
  redis.call("EXPIRE", wf .. suffix, ttl)
end
redis.call("ZADD", prefix .. "wf-index", now, id)
redis.call("ZREMRANGEBYSCORE", prefix .. "wf-index", 0, now - retention)
return 1
