-- (transition_fn.lua is prepended.) KEYS[1] = record hash, KEYS[2] = key prefix; ARGV as `a`.
return transition(KEYS[1], KEYS[2], ARGV)
