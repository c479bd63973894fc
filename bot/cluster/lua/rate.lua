-- The per-person rate limit, shared by every front end: a sliding window of accepted photo times (server time).
-- ARGV: prefix, user, per_window, window_ms, mode ('check' or 'record').
-- 'check' returns the milliseconds to wait (0: the person may send now); 'record' counts one photo now.
local prefix, user, limit, window = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local times = key(prefix, 'rate', user)
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', times, '-inf', now_ms - window)
if ARGV[5] == 'record' then
  redis.call('ZADD', times, now_ms, now[1] .. now[2] .. ':' .. redis.call('ZCARD', times))
  redis.call('PEXPIRE', times, window)
  return 0
end
if redis.call('ZCARD', times) < limit then return 0 end
local oldest = redis.call('ZRANGE', times, 0, 0, 'WITHSCORES')
return tonumber(oldest[2]) + window - now_ms
