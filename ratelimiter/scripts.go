package ratelimiter

import (
	"embed"

	"github.com/redis/go-redis/v9"
)

//go:embed scripts/*.lua
var scriptFS embed.FS

// decisionScripts returns one script per algorithm: the shared prelude
// followed by the algorithm body.
func decisionScripts() map[Algorithm]*redis.Script {
	prelude := mustRead("scripts/prelude.lua")
	out := map[Algorithm]*redis.Script{}
	for _, a := range Algorithms() {
		out[a] = redis.NewScript(prelude + "\n" + mustRead("scripts/"+string(a)+".lua"))
	}
	return out
}

func mustRead(name string) string {
	b, err := scriptFS.ReadFile(name)
	if err != nil {
		panic("ratelimiter: missing embedded script " + name) // programmer error
	}
	return string(b)
}

// syncConfigScript renews the TTL of the configuration keys and returns
// {configuration version, epoch}.
//
// KEYS: limits, version, epoch. ARGV: retention in ms.
var syncConfigScript = redis.NewScript(`
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[3], ARGV[1])
return {tonumber(redis.call('GET', KEYS[2]) or '0'), tonumber(redis.call('GET', KEYS[3]) or '0')}
`)

// bumpEpochScript announces that quota was given back (a counter reset, a
// block lifted): every node's over-limit cache forgets what it knew. It
// returns the new epoch.
//
// KEYS: epoch. ARGV: retention ms, channel.
var bumpEpochScript = redis.NewScript(`
local e = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], 'epoch')
return e
`)

// loadLimitsScript returns the version and every limit in one consistent
// snapshot: {version, pattern1, json1, pattern2, json2, ...}.
//
// KEYS: limits, version.
var loadLimitsScript = redis.NewScript(`
local out = {tonumber(redis.call('GET', KEYS[2]) or '0')}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all do out[#out + 1] = all[i] end
return out
`)

// putLimitScript stores a limit, bumps the version, renews the TTLs and
// announces the change. It returns the new version.
//
// KEYS: limits, version. ARGV: pattern, json, retention ms, channel.
var putLimitScript = redis.NewScript(`
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local v = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('PUBLISH', ARGV[4], v)
return v
`)

// deleteLimitScript removes a limit. It returns the new version, or -1 when
// the pattern was not configured.
//
// KEYS: limits, version. ARGV: pattern, retention ms, channel.
var deleteLimitScript = redis.NewScript(`
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return -1 end
local v = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('PUBLISH', ARGV[3], v)
return v
`)

// heartbeatScript records a node's heartbeat at the Redis time, forgets nodes
// silent for longer than the retention, renews the registry TTLs and returns
// {now_us, drain_requested}.
//
// KEYS: info, hb, drain. ARGV: node id, node JSON, retention ms.
var heartbeatScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], string.format('%.17g', now))
local retention = tonumber(ARGV[3]) * 1000
local hb = redis.call('HGETALL', KEYS[2])
for i = 1, #hb, 2 do
  local seen = tonumber(hb[i + 1])
  if seen == nil or now - seen > retention then
    redis.call('HDEL', KEYS[1], hb[i])
    redis.call('HDEL', KEYS[2], hb[i])
    redis.call('HDEL', KEYS[3], hb[i])
  end
end
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
local drain = 0
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then drain = 1 end
return {now, drain}
`)

// listNodesScript returns {now_us, info fields..., "", hb fields..., "", drain ids...}
// as three flat lists separated by empty strings. Node ids are never empty.
//
// KEYS: info, hb, drain.
var listNodesScript = redis.NewScript(`
local t = redis.call('TIME')
local out = {string.format('%.17g', tonumber(t[1]) * 1000000 + tonumber(t[2]))}
for _, k in ipairs({KEYS[1], KEYS[2]}) do
  local all = redis.call('HGETALL', k)
  for i = 1, #all do out[#out + 1] = all[i] end
  out[#out + 1] = ''
end
local drains = redis.call('HKEYS', KEYS[3])
for i = 1, #drains do out[#out + 1] = drains[i] end
return out
`)

// setDrainScript requests (ARGV[2] = '1') or cancels a node's drain. It
// returns 0 when the node is not registered.
//
// KEYS: info, hb, drain. ARGV: node id, flag, retention ms, channel.
var setDrainScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
if ARGV[2] == '1' then
  redis.call('HSET', KEYS[3], ARGV[1], '1')
  redis.call('PEXPIRE', KEYS[3], ARGV[3])
else
  redis.call('HDEL', KEYS[3], ARGV[1])
end
redis.call('PUBLISH', ARGV[4], 'drain')
return 1
`)

// setBlockScript sets a block marker whose value is its end in Redis time
// (us) and whose TTL is the block's, and returns the Redis time in us.
//
// KEYS: marker. ARGV: ttl ms.
var setBlockScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('SET', KEYS[1], string.format('%.17g', now + tonumber(ARGV[1]) * 1000), 'PX', ARGV[1])
return now
`)

// putBlockIndexScript records a block in the index used for listing, value
// "<ends_us>|<created_us>|<reason>". The index lives as long as its longest
// block.
//
// KEYS: index. ARGV: key, value, ttl ms.
var putBlockIndexScript = redis.NewScript(`
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return 1
`)

// listBlocksScript drops expired entries from the block index and returns
// {now_us, key1, value1, ...}.
//
// KEYS: index.
var listBlocksScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {string.format('%.17g', now)}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local exp = tonumber(string.match(all[i + 1], '^([^|]+)|'))
  if exp == nil or exp <= now then
    redis.call('HDEL', KEYS[1], all[i])
  else
    out[#out + 1] = all[i]
    out[#out + 1] = all[i + 1]
  end
end
return out
`)
