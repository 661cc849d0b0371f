-- gcra: the generic cell rate algorithm with burst = limit. The hash holds
-- {w = time of the last write, d = debt at that time}, where the debt is the
-- theoretical arrival time minus w. Keeping the debt relative to w keeps the
-- arithmetic small and exact enough: an absolute arrival time in microseconds
-- has a resolution of only 0.25 us as a double. Denied requests do not add
-- debt.
local key = KEYS[1]
local interval = window / limit
local h = redis.call('HMGET', key, 'w', 'd')
local w = tonumber(h[1])
local d = tonumber(h[2])
local debt = 0
if w ~= nil and d ~= nil then
  debt = d - (now - w)
  if debt < 0 then debt = 0 end
end

-- A nanosecond of tolerance absorbs rounding in interval * cost.
local eps = 0.001
local allowed = 0
local retry = 0
local after = debt + interval * cost
if after <= window + eps then
  allowed = 1
  if not peek then
    debt = after
  end
else
  retry = after - window
  if retry < 1 then retry = 1 end
end

if not peek then
  if allowed == 1 then
    redis.call('HSET', key, 'w', fmt(now), 'd', fmt(debt))
  end
  if debt > 0 then
    -- Also on denial, so a key whose TTL was removed gets one back.
    redis.call('PEXPIRE', key, ttl(debt))
  end
end

local remaining = math.floor((window - debt) / interval + 1e-9)
if remaining < 0 then remaining = 0 end
if remaining > limit then remaining = limit end
return {allowed, limit - remaining, remaining, math.ceil(debt), math.ceil(retry), now, block, statettl(key)}
