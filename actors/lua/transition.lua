-- Apply one state transition to a job record, atomically, in one round trip.
-- KEYS[1] = record hash, KEYS[2] = key prefix ("gaveurs:jobs:")
-- ARGV = task_id, state, epoch, rank, now_ms, ttl_s, mode, retention_ms, field, value, ...
--   epoch: redrives * 10000 + retries; -1 means "the record's current epoch".
--   rank: 0 waiting (PENDING/RETRY), 1 STARTED, 2 SUCCESS/FAILURE, 3 REVOKED.
--   mode: "create" only writes a record that does not exist yet (first enqueue);
--         "active" only writes over a PENDING/RETRY/STARTED record (cancel);
--         "any" applies the ordering rule only.
-- An event older than the record (lower epoch, or same epoch and lower rank) is ignored, so a
-- late PENDING never overwrites STARTED and a STARTED never overwrites REVOKED.
-- STARTED carries a per-delivery token in the field "delivery": the same token again is a client
-- retry of this very call (a no-op); a new token over STARTED at the same epoch means the
-- previous delivery never finished (its worker died), counted in "lost_runs".
-- Returns {state after the call, lost_runs, 1 if this transition applied (or already had,
-- for a retried STARTED) else 0}.
local key, prefix = KEYS[1], KEYS[2]
local task_id, state = ARGV[1], ARGV[2]
local epoch, rank = tonumber(ARGV[3]), tonumber(ARGV[4])
local now, ttl, mode, retention = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], tonumber(ARGV[8])

local cur = redis.call("HMGET", key, "state", "epoch", "rank")
local cur_state = cur[1]
if cur_state then
  if mode == "create" then return {cur_state, 0, 0} end
  local cur_epoch, cur_rank = tonumber(cur[2]) or 0, tonumber(cur[3]) or 0
  if epoch < 0 then epoch = cur_epoch end
  if mode == "active" and cur_state ~= "PENDING" and cur_state ~= "RETRY" and cur_state ~= "STARTED" then
    return {cur_state, 0, 0}
  end
  if epoch < cur_epoch or (epoch == cur_epoch and rank < cur_rank) then return {cur_state, 0, 0} end
  if state == "STARTED" and cur_state == "STARTED" and epoch == cur_epoch then
    local delivery
    for i = 9, #ARGV, 2 do
      if ARGV[i] == "delivery" then delivery = ARGV[i + 1] end
    end
    if delivery and redis.call("HGET", key, "delivery") == delivery then
      return {cur_state, tonumber(redis.call("HGET", key, "lost_runs") or "0"), 1}
    end
    redis.call("HINCRBY", key, "lost_runs", 1)
  end
elseif mode == "active" then
  return {false, 0, 0}
else
  if epoch < 0 then epoch = 0 end
  redis.call("ZADD", prefix .. "all", now, task_id)
end

local fields = {"state", state, "epoch", epoch, "rank", rank, "updated_at", now}
for i = 9, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call("HSET", key, unpack(fields))
if state == "STARTED" then redis.call("HINCRBY", key, "attempts", 1) end

for _, s in ipairs({"PENDING", "RETRY", "STARTED", "SUCCESS", "FAILURE", "REVOKED"}) do
  if s ~= state then redis.call("ZREM", prefix .. "state:" .. s, task_id) end
end
redis.call("ZADD", prefix .. "state:" .. state, now, task_id)
redis.call("EXPIRE", key, ttl)

-- Terminal transitions also trim index entries whose records have expired: cheap and bounded.
if rank >= 2 then
  redis.call("ZREMRANGEBYSCORE", prefix .. "state:" .. state, 0, now - retention)
  redis.call("ZREMRANGEBYSCORE", prefix .. "all", 0, now - retention)
end
local lost_runs = 0
if state == "STARTED" then lost_runs = tonumber(redis.call("HGET", key, "lost_runs") or "0") end
return {state, lost_runs, 1}
