-- (transition_fn.lua and settle_fn.lua are prepended.) Record writes of several worker threads
-- in one round trip (runtime/batching.py): transitions (as transition.lua) and settles (as
-- settle.lua), applied in order, each as its own script would.
-- ARGV, for each write: its kind ("transition" | "settle"), its number of keys, its number of
-- arguments, then its arguments. KEYS: the writes' keys, in the same order.
-- Returns the writes' replies, in order.
local out = {}
local k, i = 1, 1
while i <= #ARGV do
  local kind, nkeys, nargs = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local keys, a = {}, {}
  for j = 0, nkeys - 1 do keys[j + 1] = KEYS[k + j] end
  for j = 1, nargs do a[j] = ARGV[i + 2 + j] end
  if kind == "settle" then
    out[#out + 1] = settle(keys, a)
  else
    out[#out + 1] = transition(keys[1], keys[2], a)
  end
  k, i = k + nkeys, i + 3 + nargs
end
return out
