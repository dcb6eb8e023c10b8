-- Compare-and-delete: release a uniqueness key only if it still names this task.
-- KEYS[1] = unique key; ARGV[1] = task_id
if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end
return 0
