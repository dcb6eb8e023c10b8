-- (appended to transition_fn.lua) Workflows: a step's final state advances its workflow inside
-- the script that records that state, so no job, thread or timer waits for children and a
-- successor is enqueued exactly once (BullMQ's flows keep a dependency counter the same way).
-- A workflow `wf` = prefix .. "wf:" .. id is:
--   wf              hash: state (RUNNING, SUCCESS, FAILURE, REVOKED), policy (fail_fast,
--                   continue), total, finished, failed, created_at, updated_at, completed_at
--   wf:spec         hash step -> JSON {q, m, id, body, task, fields}: its message, pre-encoded
--   wf:children     hash step -> JSON list of the steps that depend on it
--   wf:deps         hash step -> dependencies not yet released
--   wf:enqueued     hash step -> when it was enqueued (never twice: HSETNX)
--   wf:outcome      hash step -> the final state its workflow counted (idempotence: a repeated
--                   or late final transition of the same step counts once)
--   wf:held         set of steps ready while a fail_fast workflow is FAILURE (enqueued when a
--                   re-driven step succeeds and no step is failed any more)

-- Push a step's message (what Dramatiq's enqueue does) and create its job record.
local function enqueue_step(prefix, wf, step, now, retention)
  if redis.call("HSETNX", wf .. ":enqueued", step, now) == 0 then return end
  local spec = cjson.decode(redis.call("HGET", wf .. ":spec", step))
  redis.call("HSET", spec.m, spec.id, spec.body)
  redis.call("RPUSH", spec.q, spec.id)
  local ttl = math.floor(retention / 1000)
  local a = {spec.task, "PENDING", 0, 0, now, ttl, "create", retention, "enqueued_at", now}
  for _, value in ipairs(spec.fields) do a[#a + 1] = value end
  transition(prefix .. "job:" .. spec.task, prefix, a)
end

local function finish_if_complete(wf, wstate, now)
  if wstate ~= "RUNNING" and wstate ~= "FAILURE" then return end
  local c = redis.call("HMGET", wf, "total", "finished", "failed")
  if tonumber(c[2]) < tonumber(c[1]) then return end
  local final = "SUCCESS"
  if tonumber(c[3]) > 0 then final = "FAILURE" end
  redis.call("HSET", wf, "state", final, "completed_at", now)
end

advance_workflow = function(prefix, id, step, state, now, retention)
  local wf = prefix .. "wf:" .. id
  local meta = redis.call("HMGET", wf, "state", "policy")
  local wstate, policy = meta[1], meta[2]
  if not wstate then return end
  local before = redis.call("HGET", wf .. ":outcome", step)
  local ok = state == "SUCCESS"
  -- Counted already: the same end again (a retried settle), or a failure turning into another
  -- failure (FAILURE then REVOKED). Only a failure turning into a success (a re-drive) counts.
  if before == state or before == "SUCCESS" or (before and not ok) then return end
  redis.call("HSET", wf .. ":outcome", step, state)
  redis.call("HSET", wf, "updated_at", now)
  local release = false
  if not before then
    redis.call("HINCRBY", wf, "finished", 1)
    if ok or policy == "continue" then release = true end
    if not ok then
      redis.call("HINCRBY", wf, "failed", 1)
      if wstate == "RUNNING" and policy ~= "continue" then
        wstate = "FAILURE"
        redis.call("HSET", wf, "state", wstate)
      end
    end
  else
    -- A failed step re-driven to success: its dependents go on (fail_fast held them back),
    -- and the workflow resumes once no step is failed any more.
    local failed = redis.call("HINCRBY", wf, "failed", -1)
    if policy ~= "continue" then release = true end
    if failed == 0 and wstate == "FAILURE" then
      wstate = "RUNNING"
      redis.call("HSET", wf, "state", wstate, "completed_at", "")
      for _, held in ipairs(redis.call("SMEMBERS", wf .. ":held")) do
        enqueue_step(prefix, wf, held, now, retention)
      end
      redis.call("DEL", wf .. ":held")
    end
  end
  if release then
    local children = redis.call("HGET", wf .. ":children", step)
    if children then
      for _, child in ipairs(cjson.decode(children)) do
        if redis.call("HINCRBY", wf .. ":deps", child, -1) == 0 then
          if wstate == "RUNNING" then
            enqueue_step(prefix, wf, child, now, retention)
          elseif wstate == "FAILURE" then
            redis.call("SADD", wf .. ":held", child)
            redis.call("EXPIRE", wf .. ":held", math.floor(retention / 1000))
          end
        end
      end
    end
  end
  finish_if_complete(wf, wstate, now)
end
