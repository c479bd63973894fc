-- The numbers front ends report: worker slots of live hosts, live hosts, jobs running (pending), counters.
-- Hosts whose heartbeat expired are forgotten here. ARGV: prefix, group.
local prefix, group = ARGV[1], ARGV[2]
local hosts, slots = key(prefix, 'hosts'), key(prefix, 'host_slots')
local now = redis.call('TIME')[1]
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', hosts, '-inf', now)) do redis.call('HDEL', slots, gone) end
redis.call('ZREMRANGEBYSCORE', hosts, '-inf', now)
local alive = 0
for _, count in ipairs(redis.call('HVALS', slots)) do alive = alive + tonumber(count) end
local running = 0
if redis.call('EXISTS', key(prefix, 'stream')) == 1 then
  running = redis.call('XPENDING', key(prefix, 'stream'), group)[1]
end
return {alive, redis.call('ZCARD', hosts), running, redis.call('HGETALL', key(prefix, 'counters'))}
