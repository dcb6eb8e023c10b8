-- What the end of an attempt leaves behind, besides the record's state (transition_fn.lua calls
-- `attempt_history` before it writes the record; this file is prepended to it):
-- 1. the record's attempt timeline: field "attempt_log", a JSON array of the last
--    ATTEMPTS_KEPT attempts (number, outcome, start, end, worker, error type and message, next
--    attempt's time for a RETRY), appended to the fields the transition writes (no extra write);
--    a new delivery over a STARTED record adds the lost one as outcome "LOST". A job that
--    succeeds at its first attempt (most of them) writes no timeline: its record tells it all
--    (JobRecord.timeline), and its hash stays small;
-- 2. the per-minute counters of the console's charts: hash prefix.."minute:"..<minute>, fields
--    <outcome>, "queue:"<queue> and "ms:"<job name>":"<duration bucket> (bucket b holds
--    durations of about 2^(b/4) ms: a p95 read back within 19 %), kept MINUTES_TTL_S.
-- Only attempt ends pay for this (RETRY, SUCCESS, FAILURE, REVOKED of a STARTED record): two to
-- four HINCRBY inside the script (the fields it reads come with the transition's own HMGET).
local ATTEMPTS_KEPT = 20
local ERROR_CHARS = 300
local MINUTES_TTL_S = 2 * 3600

local function count_minute(prefix, state, queue, task_name, started, now)
  local minute = prefix .. "minute:" .. math.floor(now / 60000)
  if redis.call("HINCRBY", minute, state, 1) == 1 then
    redis.call("EXPIRE", minute, MINUTES_TTL_S)
  end
  if queue then redis.call("HINCRBY", minute, "queue:" .. queue, 1) end
  if started and state ~= "REVOKED" then
    local bucket = math.floor(4 * math.log(math.max(now - started, 1)) / math.log(2))
    redis.call("HINCRBY", minute, "ms:" .. (task_name or "?") .. ":" .. bucket, 1)
  end
end

-- `cur`: the record's fields as transition_fn.lua read them (1 state, 7 attempts, 8 started_at,
-- 9 worker, 10 queue, 11 attempt_log, 12 task_name), before this transition.
local function attempt_history(prefix, cur, state, now, a, fields)
  if cur[1] ~= "STARTED" then return end
  local started = tonumber(cur[8])
  if state == "SUCCESS" and not cur[11] then
    count_minute(prefix, state, cur[10], cur[12], started, now)
    return
  end
  local entry = {
    attempt = tonumber(cur[7]) or 0,
    outcome = state == "STARTED" and "LOST" or state,
    started_at = started,
    ended_at = now,
    worker = cur[9] or nil,
  }
  for i = 9, #a, 2 do
    local name, value = a[i], a[i + 1]
    if name == "error" and value ~= "" then
      local ok, err = pcall(cjson.decode, value)
      if ok and type(err) == "table" then
        entry.error_type = err.type
        entry.error_message = string.sub(tostring(err.message or ""), 1, ERROR_CHARS)
      end
    elseif name == "eta" and state == "RETRY" and value ~= "" then
      entry.retry_at = tonumber(value)
    end
  end
  local log = {}
  if cur[11] then
    local ok, decoded = pcall(cjson.decode, cur[11])
    if ok and type(decoded) == "table" then log = decoded end
  end
  log[#log + 1] = entry
  while #log > ATTEMPTS_KEPT do table.remove(log, 1) end
  fields[#fields + 1] = "attempt_log"
  fields[#fields + 1] = cjson.encode(log)
  if state ~= "STARTED" then count_minute(prefix, state, cur[10], cur[12], started, now) end
end
