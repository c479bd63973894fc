-- Admit one job, atomically across front ends: the person's rate limit, the global bound, then the person's cap,
-- then the fair queue; an admitted job counts in the rate limit in the same step, so racing front ends admit
-- exactly the limit. ARGV: prefix, user, queue_size, per_user_cap, job_id, rate_limit (per window; 0: none),
-- rate_window_ms, place (a clip's id, or ''), place_ttl_ms, the daily budgets' cost (photo equivalents) and
-- number of budgets, each as scope, member, daily limit (see budget_short in common.lua; none: 0, 0), then the
-- job's fields as name/value pairs. A job that does not fit in a budget is refused before the bounds are asked,
-- and an admitted one is charged in the same step, so racing front ends spend exactly the budget.
-- A clip holds one place for its whole life: its first step takes it (admitted like a photo), the place counts as
-- one waiting job of the person until released (or, if its front end died, until it expires), and the clip's
-- later steps ride on it: never refused, not counted again (counters 'held', hash 'held' by person).
-- Returns {'ok', position} | {'rate', wait_ms} | {'busy', waiting} | {'person', waiting_of_this_person}
-- | {'budget', number of the budget (1-based), left in it}.
local prefix, user, job_id = ARGV[1], ARGV[2], ARGV[5]
local queue_size, per_user = tonumber(ARGV[3]), tonumber(ARGV[4])
local rate_limit, rate_window = tonumber(ARGV[6]), tonumber(ARGV[7])
local place, place_ttl = ARGV[8], tonumber(ARGV[9])
local cost, budgets = tonumber(ARGV[10]), {}
for i = 12, 11 + 3 * tonumber(ARGV[11]) do budgets[#budgets + 1] = ARGV[i] end
local first_field = 12 + #budgets
local counters, turn = key(prefix, 'counters'), key(prefix, 'turn')
local mine_key = key(prefix, 'waiting', user)
local places, my_places, held_by = key(prefix, 'places'), key(prefix, 'places', user), key(prefix, 'held')

-- Nothing is written before the bounds say yes (see rate_wait in common.lua): expired places are skipped by score.
local now = now_ms()
local held_until = place ~= '' and redis.call('ZSCORE', places, place)
local held = held_until and tonumber(held_until) > now
local mine = redis.call('LLEN', mine_key)
if not held then
  if rate_limit > 0 then
    local wait = rate_wait(prefix, user, rate_limit, rate_window)
    if wait > 0 then return {'rate', wait} end
  end
  local short, left = budget_short(prefix, budgets, cost)
  if short then return {'budget', short, left} end
  local waiting = tonumber(redis.call('HGET', counters, 'waiting') or '0')
    - tonumber(redis.call('HGET', counters, 'held') or '0') + redis.call('ZCOUNT', places, '(' .. now, '+inf')
  local taken = mine - tonumber(redis.call('HGET', held_by, user) or '0')
    + redis.call('ZCOUNT', my_places, '(' .. now, '+inf')
  if waiting >= queue_size then
    redis.call('HINCRBY', counters, 'refused', 1)
    return {'busy', waiting}
  end
  if taken >= per_user then
    redis.call('HINCRBY', counters, 'refused', 1)
    return {'person', taken}
  end
  if rate_limit > 0 then rate_record(prefix, user, rate_window) end
  budget_spend(prefix, budgets, cost)
end
if place ~= '' then  -- take or renew the clip's place (dropping expired ones); this step rides on it
  redis.call('ZADD', places, now + place_ttl, place)
  redis.call('ZADD', my_places, now + place_ttl, place)
  redis.call('ZREMRANGEBYSCORE', places, '-inf', now)
  redis.call('ZREMRANGEBYSCORE', my_places, '-inf', now)
  redis.call('PEXPIRE', places, place_ttl)
  redis.call('PEXPIRE', my_places, place_ttl)
  redis.call('HINCRBY', counters, 'held', 1)
  redis.call('HINCRBY', held_by, user, 1)
end

-- The job's place in round-robin order: every job of the earlier rounds (each person's first `mine` jobs),
-- then the people ahead of this one in the turn who still have a job in this round.
local position, ahead = mine + 1, true
for _, other in ipairs(redis.call('LRANGE', turn, 0, -1)) do
  if other == user then
    ahead = false
  else
    local theirs = redis.call('LLEN', key(prefix, 'waiting', other))
    position = position + math.min(theirs, mine)
    if ahead and theirs > mine then position = position + 1 end
  end
end

local fields = {}
for i = first_field, #ARGV do fields[#fields + 1] = ARGV[i] end
if place ~= '' then fields[#fields + 1] = 'place'; fields[#fields + 1] = place end
redis.call('HSET', key(prefix, 'job', job_id), 'attempts', 0, unpack(fields))
redis.call('RPUSH', mine_key, job_id)
if mine == 0 then redis.call('RPUSH', turn, user) end  -- a person is in the turn while they have jobs waiting
redis.call('HINCRBY', counters, 'waiting', 1)
redis.call('HINCRBY', counters, 'accepted', 1)
redis.call('XADD', key(prefix, 'events', job_id), '*', 'stage', 'queued', 'position', position)
-- Wake one idle worker slot; tokens beyond the queue bound would only wake slots for nothing.
local wake = key(prefix, 'wake')
redis.call('RPUSH', wake, 1)
redis.call('LTRIM', wake, 0, queue_size)
return {'ok', position}
