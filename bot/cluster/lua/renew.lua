-- The heartbeat of a worker host: renew the lease of each job it runs (only while the entry is still its own:
-- a host resumed after a pause must not take back a job another host claimed), and say the host is alive.
-- ARGV: prefix, group, consumer, host_ttl_seconds, slots, then the stream entries it runs.
-- Returns the entries whose lease was lost.
local prefix, group, consumer = ARGV[1], ARGV[2], ARGV[3]
local stream = key(prefix, 'stream')
local lost = {}
for i = 6, #ARGV do
  if holds_lease(prefix, group, ARGV[i], consumer) then
    redis.call('XCLAIM', stream, group, consumer, 0, ARGV[i], 'JUSTID')  -- resets the entry's idle time
  else
    lost[#lost + 1] = ARGV[i]
  end
end
local now = redis.call('TIME')
redis.call('ZADD', key(prefix, 'hosts'), tonumber(now[1]) + tonumber(ARGV[4]), consumer)
redis.call('HSET', key(prefix, 'host_slots'), consumer, ARGV[5])
return lost
