-- sliding_window_counter: a hash {s = window start, c = units in the current
-- window, p = units in the previous window}. The count is p weighted by the
-- share of the previous window still inside the sliding window, plus c.
-- Windows are laid end to end from the key's first use.
local key = KEYS[1]
local h = redis.call('HMGET', key, 's', 'c', 'p')
local s = tonumber(h[1])
local c = tonumber(h[2]) or 0
local p = tonumber(h[3]) or 0
if s == nil then
  s = now
  c = 0
  p = 0
elseif now >= s + window then
  local k = math.floor((now - s) / window)
  if k == 1 then p = c else p = 0 end
  c = 0
  s = s + k * window
end
local elapsed = now - s
if elapsed < 0 then elapsed = 0 end -- the node clock went back: stay in this window

local est = p * (window - elapsed) / window + c
local allowed = 0
local retry = 0
if est + cost <= limit then
  allowed = 1
  if not peek then
    c = c + cost
    est = est + cost
  end
else
  if c + cost <= limit and p > 0 then
    -- Later in this window the previous window's weight has fallen enough.
    local at = window * (1 - (limit - c - cost) / p)
    retry = at - elapsed
  else
    -- Wait for the next window, where c becomes the weighted previous count.
    retry = s + window - now
    if c > 0 then
      local at = window * (1 - (limit - cost) / c)
      if at > 0 then retry = retry + at end
    end
  end
  if retry < 1 then retry = 1 end
end

local reset = 0
if c > 0 then
  reset = s + 2 * window - now
elseif p > 0 then
  reset = s + window - now
end

if not peek then
  if c > 0 or p > 0 then
    redis.call('HSET', key, 's', fmt(s), 'c', fmt(c), 'p', fmt(p))
    redis.call('PEXPIRE', key, ttl(reset))
  else
    redis.call('DEL', key)
  end
end

local count = math.ceil(est - 1e-9)
if count < 0 then count = 0 end
local remaining = math.floor(limit - est + 1e-9)
if remaining < 0 then remaining = 0 end
return {allowed, count, remaining, math.ceil(reset), math.ceil(retry), now, block, statettl(key)}
