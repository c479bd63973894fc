-- A worker host adds a progress event to a job's stream, only while it holds the job's lease: a host resumed
-- after a pause must not mix its stale stages into the progress of the host that took the job over.
-- ARGV: prefix, group, consumer, entry, job_id, max_length, then the event's fields as name/value pairs.
local prefix, group, consumer, entry, job_id = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if not holds_lease(prefix, group, entry, consumer) then return 0 end
local fields = {}
for i = 7, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('XADD', key(prefix, 'events', job_id), 'MAXLEN', '~', ARGV[6], '*', unpack(fields))
return 1
