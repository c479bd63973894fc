-- Prepended to every script of bot/cluster: key names and the one way a job gets its answer.
-- Keys are built here from the prefix, so the scripts need one Redis (or Valkey) primary, not a Cluster.

local function key(prefix, ...)
  return prefix .. ':' .. table.concat({...}, ':')
end

-- Answer a job once: take the completion fence, store the outcome, add the terminal progress event,
-- acknowledge and delete its stream entry, and drop the job's payload. False when the fence was taken before.
local function answer(prefix, group, entry, job_id, owner, ttl, outcome, fields)
  if not redis.call('SET', key(prefix, 'fence', job_id), owner, 'NX', 'EX', ttl) then
    return false
  end
  local result = key(prefix, 'result', job_id)
  redis.call('HSET', result, 'outcome', outcome, unpack(fields))
  redis.call('EXPIRE', result, ttl)
  local events = key(prefix, 'events', job_id)
  redis.call('XADD', events, '*', 'stage', outcome == 'done' and 'done' or 'failed')
  redis.call('EXPIRE', events, ttl)
  local stream = key(prefix, 'stream')
  redis.call('XACK', stream, group, entry)
  redis.call('XDEL', stream, entry)
  redis.call('DEL', key(prefix, 'job', job_id))
  redis.call('HINCRBY', key(prefix, 'counters'), outcome, 1)
  return true
end

-- Keep a record of a job that failed for good, for operators (bounded, oldest records go first). It names no
-- person (`user` is not written): /forget can't reach a record it can't find, so none is kept about anyone.
local function dead_letter(prefix, job_id, user, attempts, reason)
  redis.call('XADD', key(prefix, 'dead'), 'MAXLEN', '~', 10000, '*',
    'job', job_id, 'attempts', attempts, 'reason', reason)
  redis.call('HINCRBY', key(prefix, 'counters'), 'dead', 1)
end

-- True when the stream entry is pending for this consumer: the lease is still ours.
local function holds_lease(prefix, group, entry, consumer)
  local pending = redis.call('XPENDING', key(prefix, 'stream'), group, entry, entry, 1)
  return #pending == 1 and pending[1][2] == consumer
end

-- The server's time in milliseconds.
local function now_ms()
  local now = redis.call('TIME')
  return tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
end

-- The per-person rate limit, shared by every front end: a sliding window of accepted photo times (server time).
-- Milliseconds ``user`` must wait before another photo (0: now). It only reads: a script's first write must be one
-- that Redis checks against maxmemory, else a server out of memory would let the whole script through.
local function rate_wait(prefix, user, limit, window)
  local times, now = key(prefix, 'rate', user), now_ms()
  local recent = redis.call('ZRANGEBYSCORE', times, '(' .. (now - window), '+inf', 'WITHSCORES', 'LIMIT', 0, limit)
  if #recent < 2 * limit then return 0 end
  return tonumber(recent[2]) + window - now
end

-- Count one accepted photo of ``user`` now, and forget the times that left the window.
local function rate_record(prefix, user, window)
  local times, now = key(prefix, 'rate', user), now_ms()
  redis.call('ZADD', times, now, now .. ':' .. redis.call('ZCARD', times))
  redis.call('ZREMRANGEBYSCORE', times, '-inf', now - window)
  redis.call('PEXPIRE', times, window)
end

-- Daily budgets (bot/budgets.py), shared by every front end: today's spending of each scope ('person', 'group')
-- in a sorted set member -> photo equivalents, by the server's UTC day; a day's set expires after two days.
local BUDGET_DAY_MS, BUDGET_KEEP_SECONDS = 86400000, 2 * 86400

local function budget_key(prefix, scope)
  return key(prefix, 'budget', math.floor(now_ms() / BUDGET_DAY_MS), scope)
end

-- ``lines`` is a flat list of budgets (scope, member, daily limit (0: only counted), ...). The 1-based number of the first one
-- ``cost`` does not fit in, and what is left in it; nil when it fits in all. It only reads (see rate_wait).
local function budget_short(prefix, lines, cost)
  for i = 1, #lines, 3 do
    local used = tonumber(redis.call('ZSCORE', budget_key(prefix, lines[i]), lines[i + 1]) or '0')
    local limit = tonumber(lines[i + 2])
    if limit > 0 and used + cost > limit then return (i + 2) / 3, math.max(0, limit - used) end
  end
  return nil
end

-- Spend ``cost`` on every budget of ``lines`` (negative: give it back, never below 0).
local function budget_spend(prefix, lines, cost)
  for i = 1, #lines, 3 do
    local spent = budget_key(prefix, lines[i])
    if redis.call('ZINCRBY', spent, cost, lines[i + 1]) + 0 <= 0 then redis.call('ZREM', spent, lines[i + 1]) end
    redis.call('EXPIRE', spent, BUDGET_KEEP_SECONDS)
  end
end
