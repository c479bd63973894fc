-- Daily budgets outside admission (a photo's charge is taken by admit.lua): the rest of a clip's charge once its
-- frames are known, a refund, and reads for /usage and the admin page. Each op is one atomic step.
-- ARGV: prefix, op, then the op's own arguments:
--   'spend' cost n_lines scope member limit ...  -> {0, 0} spent | {line number, left} nothing spent
--   'refund' cost n_lines scope member limit ...  -> 1
--   'used' scope member                           -> photo equivalents spent today
--   'top' scope count                             -> {member, spent, ...} most first
local prefix, op = ARGV[1], ARGV[2]

local function lines_from(first)
  local lines = {}
  for i = first + 1, first + 3 * tonumber(ARGV[first]) do lines[#lines + 1] = ARGV[i] end
  return lines
end

if op == 'spend' then
  local cost, lines = tonumber(ARGV[3]), lines_from(4)
  local short, left = budget_short(prefix, lines, cost)
  if short then return {short, left} end
  budget_spend(prefix, lines, cost)
  return {0, 0}
elseif op == 'refund' then
  budget_spend(prefix, lines_from(4), -tonumber(ARGV[3]))
  return 1
elseif op == 'used' then
  return tonumber(redis.call('ZSCORE', budget_key(prefix, ARGV[3]), ARGV[4]) or '0')
elseif op == 'top' then
  local count = tonumber(ARGV[4])
  if count < 1 then return {} end
  return redis.call('ZREVRANGE', budget_key(prefix, ARGV[3]), 0, count - 1, 'WITHSCORES')
end
return redis.error_reply('unknown budgets op ' .. tostring(op))
