-- fixed_window: a hash {s = window start, n = units used}. A window starts at
-- the first use after the previous one ended, so a burst at the end of one
-- window and the start of the next can reach twice the limit; that boundary
-- burst is kept on purpose.
local key = KEYS[1]
local h = redis.call('HMGET', key, 's', 'n')
local s = tonumber(h[1])
local n = tonumber(h[2]) or 0
if s == nil or now >= s + window then
  s = now
  n = 0
end

local allowed = 0
local retry = 0
local reset = s + window - now
if n + cost <= limit then
  allowed = 1
  if not peek then
    n = n + cost
  end
else
  retry = reset
  if retry < 1 then retry = 1 end
end

if not peek and n > 0 then
  redis.call('HSET', key, 's', fmt(s), 'n', fmt(n))
  redis.call('PEXPIRE', key, ttl(reset))
end
if n == 0 then reset = 0 end

local remaining = limit - n
if remaining < 0 then remaining = 0 end
return {allowed, n, remaining, math.ceil(reset), math.ceil(retry), now, block, statettl(key)}
