-- Shared prelude of the decision scripts; the algorithm body follows it.
--
-- KEYS[1]  the algorithm's state key      ratelimit:{<key>}:<algorithm>
-- KEYS[2]  the key's block marker          ratelimit:{<key>}:block
-- KEYS[3]  (sliding_window_log only) the member sequence ratelimit:{<key>}:swl:seq
-- ARGV[1]  now in microseconds, or '' to read the Redis server clock (TIME)
-- ARGV[2]  limit (units per window, >= 1)
-- ARGV[3]  window in microseconds (>= 1000)
-- ARGV[4]  cost in units (1 <= cost <= limit; 0 in peek mode)
-- ARGV[5]  'check' consumes quota; 'peek' only reads and never writes
--
-- Every script returns
--   {allowed, count, remaining, reset_after_us, retry_after_us, now_us, block_pttl_ms, state_pttl_ms}
-- where block_pttl_ms is -2 when the key is not blocked and state_pttl_ms is
-- the state key's PTTL in peek mode (-3 in check mode, where nobody reads it).
-- Every write sets the state key's TTL in the same script, so no key lives
-- without one.
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[1])
end
local limit = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local peek = ARGV[5] == 'peek'

-- fmt renders a number without the precision loss of Lua's default %.14g.
local function fmt(n)
  return string.format('%.17g', n)
end

-- ttl converts microseconds to a PEXPIRE argument: whole milliseconds, >= 1.
local function ttl(us)
  local m = math.ceil(us / 1000)
  if m < 1 then m = 1 end
  return m
end

-- statettl reports the state key's PTTL to peeks only.
local function statettl(key)
  if peek then return redis.call('PTTL', key) end
  return -3
end

-- A block marker holds its end in Redis time (us) and carries the same TTL,
-- so a block ends on time even on a store whose TTLs do not run down on
-- their own (miniredis without FastForward).
local block = redis.call('PTTL', KEYS[2])
if block ~= -2 then
  local ends = tonumber(redis.call('GET', KEYS[2]))
  if ends ~= nil then
    local t = redis.call('TIME')
    local left = ends - (tonumber(t[1]) * 1000000 + tonumber(t[2]))
    if left <= 0 then
      block = -2
      if not peek then redis.call('DEL', KEYS[2]) end
    else
      block = math.ceil(left / 1000)
    end
  end
end
if block ~= -2 and not peek then
  return {0, 0, 0, 0, 0, now, block, -3}
end
