-- A worker host answers a job it ran. Refused (0) when its lease was lost (another host took the job over while
-- this one was paused or cut off) or when the completion fence shows the job was answered already.
-- ARGV: prefix, group, consumer, entry, job_id, ttl, outcome, dead-letter reason ('' for none), result fields.
local prefix, group, consumer, entry, job_id = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if not holds_lease(prefix, group, entry, consumer) then return 0 end
local job = key(prefix, 'job', job_id)
local user = redis.call('HGET', job, 'user') or ''
local attempts = redis.call('HGET', job, 'attempts') or '0'
local fields = {}
for i = 9, #ARGV do fields[#fields + 1] = ARGV[i] end
if not answer(prefix, group, entry, job_id, consumer, ARGV[6], ARGV[7], fields) then return 0 end
if ARGV[8] ~= '' then dead_letter(prefix, job_id, user, attempts, ARGV[8]) end
return 1
