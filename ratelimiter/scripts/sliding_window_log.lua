-- sliding_window_log: a sorted set of one member per consumed unit, scored by
-- the time it was consumed. Exact: a unit counts while it is younger than the
-- window. Members are numbers from the sequence key, which always outlives the
-- set by one window so a member can never be reused while the set holds it.
local key = KEYS[1]
local threshold = now - window
local count
if peek then
  count = redis.call('ZCOUNT', key, '(' .. fmt(threshold), '+inf')
else
  redis.call('ZREMRANGEBYSCORE', key, '-inf', fmt(threshold))
  count = redis.call('ZCARD', key)
end

local allowed = 0
local retry = 0
if count + cost <= limit then
  allowed = 1
  if not peek then
    local last = redis.call('INCRBY', KEYS[3], cost)
    local score = fmt(now)
    local i = last - cost + 1
    while i <= last do
      local args = {}
      local n = 0
      while i <= last and n < 256 do
        args[#args + 1] = score
        args[#args + 1] = fmt(i)
        i = i + 1
        n = n + 1
      end
      redis.call('ZADD', key, unpack(args))
    end
    count = count + cost
  end
else
  -- The request fits once the (count + cost - limit) oldest units have left.
  local need = count + cost - limit
  local e = redis.call('ZRANGE', key, need - 1, need - 1, 'WITHSCORES')
  if e[2] then
    retry = tonumber(e[2]) + window - now
  else
    retry = window
  end
  if retry < 1 then retry = 1 end
end

local reset = 0
if count > 0 then
  local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if newest[2] then
    reset = tonumber(newest[2]) + window - now
    if reset < 0 then reset = 0 end
  end
end

if not peek and count > 0 then
  redis.call('PEXPIRE', key, ttl(reset))
  redis.call('PEXPIRE', KEYS[3], ttl(reset + window))
end

local remaining = limit - count
if remaining < 0 then remaining = 0 end
return {allowed, count, remaining, math.ceil(reset), math.ceil(retry), now, block, statettl(key)}
