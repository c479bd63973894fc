-- Source photos for the re-style buttons, bounded in all and per person, in one atomic step each.
-- A photo is a hash <prefix>:source:<key> {image, owner} expiring with its time-to-live (Redis deletes it on time);
-- the indexes below let the bounds be kept without scanning:
--   sources:used (zset key -> recency rank from the counter sources:rank: the highest was kept or read last),
--   sources:stored (zset key -> when kept, ms),
--   sources:size and sources:owner (hashes by key), sources:bytes (total), sources:of:<owner> (zset key -> recency
--   rank), sources:bytes_of (hash owner -> bytes). A photo of no one has owner ''.
-- A plain string under <prefix>:source:<key> is a photo kept before owners were recorded: anyone's who has its key.
-- ARGV: prefix, op ('put', 'get', 'delete', 'forget'), ttl (ms), then the op's own arguments.
local prefix, op, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local SWEEP_BATCH = 100

local function server_ms()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

local function sources(...) return key(prefix, 'sources', ...) end

local function drop(source)
  local size = tonumber(redis.call('HGET', sources('size'), source) or '0')
  local owner = redis.call('HGET', sources('owner'), source)
  redis.call('DEL', key(prefix, 'source', source))
  redis.call('ZREM', sources('used'), source)
  redis.call('ZREM', sources('stored'), source)
  redis.call('HDEL', sources('size'), source)
  redis.call('HDEL', sources('owner'), source)
  if owner then redis.call('DECRBY', sources('bytes'), size) end
  if owner and owner ~= '' then
    redis.call('ZREM', sources('of', owner), source)
    if redis.call('HINCRBY', sources('bytes_of'), owner, -size) <= 0 then
      redis.call('HDEL', sources('bytes_of'), owner)
    end
  end
  return owner and 1 or 0
end

-- Photos past their time-to-live leave the indexes (Redis deleted the photos themselves already).
local function sweep(now)
  local expired = redis.call('ZRANGEBYSCORE', sources('stored'), '-inf', now - ttl, 'LIMIT', 0, SWEEP_BATCH)
  for _, source in ipairs(expired) do drop(source) end
end

-- Drop the least recently used photos of `index` until it holds at most `items` photos and `budget` bytes.
local function evict(index, items, budget, bytes_now)
  local count = redis.call('ZCARD', index)
  while count > 0 and ((items >= 0 and count > items) or (budget >= 0 and bytes_now() > budget)) do
    drop(redis.call('ZRANGE', index, 0, 0)[1])
    count = count - 1
  end
end

local now = server_ms()
-- Milliseconds repeat within a burst; a counter orders every use, so the least recently used is always known.
local function next_rank() return redis.call('INCR', sources('rank')) end

if op == 'put' then
  -- ARGV[4..]: key, owner ('' for no one), max items, max bytes, per-person items, per-person bytes (-1: none), image
  local source, owner, image = ARGV[4], ARGV[5], ARGV[10]
  local max_items, max_bytes = tonumber(ARGV[6]), tonumber(ARGV[7])
  local person_items, person_bytes = tonumber(ARGV[8]), tonumber(ARGV[9])
  local size = #image
  if (max_bytes >= 0 and size > max_bytes) or (owner ~= '' and person_bytes >= 0 and size > person_bytes) then
    return 0
  end
  local photo = key(prefix, 'source', source)
  -- The first write: Redis checks it against maxmemory, so a server out of memory refuses the whole put (OOM).
  redis.call('HSET', photo, 'image', image, 'owner', owner)
  redis.call('PEXPIRE', photo, ttl)
  sweep(now)
  local rank = next_rank()
  redis.call('ZADD', sources('used'), rank, source)
  redis.call('ZADD', sources('stored'), now, source)
  redis.call('HSET', sources('size'), source, size)
  redis.call('HSET', sources('owner'), source, owner)
  redis.call('INCRBY', sources('bytes'), size)
  if owner ~= '' then
    redis.call('ZADD', sources('of', owner), rank, source)
    redis.call('HINCRBY', sources('bytes_of'), owner, size)
    evict(sources('of', owner), person_items, person_bytes, function()
      return tonumber(redis.call('HGET', sources('bytes_of'), owner) or '0')
    end)
  end
  evict(sources('used'), max_items, max_bytes, function()
    return tonumber(redis.call('GET', sources('bytes')) or '0')
  end)
  return 1
elseif op == 'get' then
  -- ARGV[4..]: key, asker ('' for the service itself: no check)
  sweep(now)
  local source, asker = ARGV[4], ARGV[5]
  local photo = key(prefix, 'source', source)
  local kind = redis.call('TYPE', photo)['ok']
  if kind == 'string' then return redis.call('GET', photo) end
  if kind ~= 'hash' then return false end
  local owner = redis.call('HGET', photo, 'owner') or ''
  if asker ~= '' and owner ~= '' and owner ~= asker then return false end
  local rank = next_rank()
  redis.call('ZADD', sources('used'), 'XX', rank, source)
  if owner ~= '' then redis.call('ZADD', sources('of', owner), 'XX', rank, source) end
  return redis.call('HGET', photo, 'image')
elseif op == 'delete' then
  sweep(now)
  drop(ARGV[4])
  redis.call('DEL', key(prefix, 'source', ARGV[4]))
  return 1
elseif op == 'forget' then
  sweep(now)
  local owned = redis.call('ZRANGE', sources('of', ARGV[4]), 0, -1)
  for _, source in ipairs(owned) do drop(source) end
  return #owned
end
return redis.error_reply('unknown source operation ' .. op)
