-- A worker slot takes the next job in round-robin order over people: the job goes onto the stream and is read
-- at once by this consumer, so it is pending (leased) for this host from the moment it leaves the fair queue.
-- ARGV: prefix, group, consumer. Returns {entry, job_id, attempts} or false when nobody is waiting.
local prefix, group, consumer = ARGV[1], ARGV[2], ARGV[3]
local turn = key(prefix, 'turn')
local user = redis.call('LPOP', turn)
if not user then return false end
local queue = key(prefix, 'waiting', user)
local job_id = redis.call('LPOP', queue)
if redis.call('LLEN', queue) > 0 then redis.call('RPUSH', turn, user) end
if not job_id then return false end
redis.call('HINCRBY', key(prefix, 'counters'), 'waiting', -1)
if redis.call('HEXISTS', key(prefix, 'job', job_id), 'place') == 1 then  -- a clip's step: it rode on a place
  redis.call('HINCRBY', key(prefix, 'counters'), 'held', -1)
  redis.call('HINCRBY', key(prefix, 'held'), user, -1)
end

local stream = key(prefix, 'stream')
redis.call('XADD', stream, '*', 'job', job_id)
local read = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', 1, 'STREAMS', stream, '>')
local entry = read[1][2][1]
local taken = entry[2][2]
local attempts = redis.call('HINCRBY', key(prefix, 'job', taken), 'attempts', 1)
return {entry[1], taken, attempts}
