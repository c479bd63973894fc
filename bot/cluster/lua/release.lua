-- Give back the place a clip held in the queue (see admit.lua). ARGV: prefix, user, place.
local prefix, user, place = ARGV[1], ARGV[2], ARGV[3]
redis.call('ZREM', key(prefix, 'places'), place)
redis.call('ZREM', key(prefix, 'places', user), place)
return 0
