-- Take over jobs whose host stopped renewing its lease (killed, powered off, paused): XAUTOCLAIM entries idle
-- longer than the lease. Each takeover is one more attempt; past the last one the job is answered with a failure
-- and dead-lettered instead of being run again.
-- ARGV: prefix, group, consumer, lease_ms, count, max_attempts, ttl, failure message.
-- Returns a list of {entry, job_id, attempts} to run.
local prefix, group, consumer = ARGV[1], ARGV[2], ARGV[3]
local stream = key(prefix, 'stream')
-- XAUTOCLAIM looks at a bounded number of pending entries per call, so walk the whole list with its cursor:
-- a stale entry may sit behind many healthy ones.
local cursor, runnable = '0-0', {}
repeat
  local claimed = redis.call('XAUTOCLAIM', stream, group, consumer, ARGV[4], cursor, 'COUNT', ARGV[5] - #runnable)
  cursor = claimed[1]
  for _, item in ipairs(claimed[2]) do
    local entry, fields = item[1], item[2]
    local job_id = fields and fields[2]
    local job = job_id and key(prefix, 'job', job_id)
    if not job or redis.call('EXISTS', job) == 0 then
      redis.call('XACK', stream, group, entry)  -- answered already: nothing left to run
      redis.call('XDEL', stream, entry)
    else
      local attempts = redis.call('HINCRBY', job, 'attempts', 1)
      if attempts > tonumber(ARGV[6]) then
        local user = redis.call('HGET', job, 'user') or ''
        answer(prefix, group, entry, job_id, consumer, ARGV[7], 'failed', {'message', ARGV[8]})
        dead_letter(prefix, job_id, user, attempts - 1, 'its worker host stopped on every attempt')
      else
        runnable[#runnable + 1] = {entry, job_id, attempts}
      end
    end
  end
until cursor == '0-0' or #runnable >= tonumber(ARGV[5])
return runnable
