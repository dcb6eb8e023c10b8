-- One state transition of a job record, as a function other scripts call (transition.lua on its
-- own, settle.lua together with the ack of the message). Atomic: a script runs alone.
-- key = record hash, prefix = key prefix ("gaveurs:jobs:"), a = argument table:
--   task_id, state, epoch, rank, now_ms, ttl_s, mode, retention_ms, field, value, ...
--   epoch: redrives * 10000 + retries; -1 means "the record's current epoch".
--   rank: 0 waiting (PENDING/RETRY), 1 STARTED, 2 SUCCESS/FAILURE, 3 REVOKED.
--   mode: "create" only writes a record that does not exist yet (first enqueue);
--         "newer" only writes a record that does not exist yet or is at an older epoch (the
--         first enqueue of a re-drive: it clears the failure in the same call as the push);
--         "active" only writes over a PENDING/RETRY/STARTED record (cancel);
--         "any" applies the ordering rule only.
-- An event older than the record (lower epoch, or same epoch and lower rank) is ignored, so a
-- late PENDING never overwrites STARTED and a STARTED never overwrites REVOKED.
-- STARTED carries a per-delivery token in the field "delivery": the same token again is a client
-- retry of this very call (a no-op); a new token over STARTED at the same epoch means the
-- previous delivery never finished (its worker died), counted in "lost_runs".
-- Returns {state after the call, lost_runs, 1 if this transition applied (or already had,
-- for a retried STARTED) else 0}.
-- A final state of a workflow step (the record names its workflow and step) advances the workflow
-- in the same call: lua/workflow_fn.lua assigns `advance_workflow`.
local advance_workflow
local function transition(key, prefix, a)
  local task_id, state = a[1], a[2]
  local epoch, rank = tonumber(a[3]), tonumber(a[4])
  local now, ttl, mode, retention = tonumber(a[5]), tonumber(a[6]), a[7], tonumber(a[8])

  -- One read for the whole call: 7-12 are what lua/history_fn.lua needs.
  local cur = redis.call("HMGET", key, "state", "epoch", "rank", "lost_runs", "workflow", "step",
    "attempts", "started_at", "worker", "queue", "attempt_log", "task_name")
  local cur_state = cur[1]
  local lost_runs = tonumber(cur[4]) or 0
  if cur_state then
    if mode == "create" then return {cur_state, 0, 0} end
    local cur_epoch, cur_rank = tonumber(cur[2]) or 0, tonumber(cur[3]) or 0
    if epoch < 0 then epoch = cur_epoch end
    if mode == "newer" and epoch <= cur_epoch then return {cur_state, 0, 0} end
    if mode == "active" and cur_state ~= "PENDING" and cur_state ~= "RETRY"
        and cur_state ~= "STARTED" then
      return {cur_state, 0, 0}
    end
    if epoch < cur_epoch or (epoch == cur_epoch and rank < cur_rank) then
      return {cur_state, 0, 0}
    end
    if state == "STARTED" and cur_state == "STARTED" and epoch == cur_epoch then
      local delivery
      for i = 9, #a, 2 do
        if a[i] == "delivery" then delivery = a[i + 1] end
      end
      if delivery and redis.call("HGET", key, "delivery") == delivery then
        return {cur_state, lost_runs, 1}
      end
      lost_runs = redis.call("HINCRBY", key, "lost_runs", 1)
    end
  elseif mode == "active" then
    return {false, 0, 0}
  else
    if epoch < 0 then epoch = 0 end
    redis.call("ZADD", prefix .. "all", now, task_id)
  end

  local fields = {"state", state, "epoch", epoch, "rank", rank, "updated_at", now}
  for i = 9, #a do fields[#fields + 1] = a[i] end
  attempt_history(prefix, cur, state, now, a, fields)  -- lua/history_fn.lua
  if state == "STARTED" then
    fields[#fields + 1] = "attempts"
    fields[#fields + 1] = (tonumber(cur[7]) or 0) + 1
  end
  redis.call("HSET", key, unpack(fields))

  -- A record sits in one state index: leave the one it was in (all of them when unknown).
  if cur_state then
    if cur_state ~= state then redis.call("ZREM", prefix .. "state:" .. cur_state, task_id) end
  else
    for _, s in ipairs({"PENDING", "RETRY", "STARTED", "SUCCESS", "FAILURE", "REVOKED"}) do
      if s ~= state then redis.call("ZREM", prefix .. "state:" .. s, task_id) end
    end
  end
  redis.call("ZADD", prefix .. "state:" .. state, now, task_id)
  redis.call("EXPIRE", key, ttl)

  -- Some terminal transitions (one in 16) also trim index entries whose records have expired:
  -- bounded work, and the daily cleanup trims whatever is left.
  if rank >= 2 and math.random(16) == 1 then
    redis.call("ZREMRANGEBYSCORE", prefix .. "state:" .. state, 0, now - retention)
    redis.call("ZREMRANGEBYSCORE", prefix .. "all", 0, now - retention)
  end
  if rank >= 2 and cur[5] and advance_workflow then
    advance_workflow(prefix, cur[5], cur[6], state, now, retention)
  end
  -- Live results (GET /api/tasks/{id}/events, enqueue --wait): tell whoever follows this job.
  -- A channel nobody listens to costs Redis a hash lookup.
  redis.call("PUBLISH", prefix .. "events:" .. task_id, state)
  if state ~= "STARTED" then lost_runs = 0 end
  return {state, lost_runs, 1}
end
