-- (transition_fn.lua and settle_fn.lua are prepended.) Acknowledge or dead-letter a message and
-- write its job record's end in one round trip, instead of one for the record and one for the ack.
-- KEYS[1] record hash, KEYS[2] record key prefix, KEYS[3] the consumer's ack set,
-- KEYS[4] queue bodies hash, KEYS[5] dead-letter zset, KEYS[6] dead-letter bodies hash,
-- KEYS[7] heartbeats zset
-- ARGV[1] "ack" | "nack", ARGV[2] Redis message id, ARGV[3] now (ms), ARGV[4] broker id,
-- ARGV[5...] the transition's arguments.
return settle(KEYS, ARGV)
