package ratelimiter

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// counterSuffixes end the Redis keys that hold a limiter key's counter state.
var counterSuffixes = []string{"swl", "swl:seq", "swc", "fw", "gcra", "block"}

// limiterKey returns the limiter key a Redis key belongs to, or "" for keys
// that hold no per-key state (configuration, registry).
func limiterKey(redisKey string) string {
	rest, ok := strings.CutPrefix(redisKey, "ratelimit:{")
	if !ok {
		return ""
	}
	i := strings.Index(rest, "}:")
	if i <= 0 {
		return ""
	}
	for _, s := range counterSuffixes {
		if rest[i+2:] == s {
			return rest[:i]
		}
	}
	return ""
}

// observeRedis pings Redis and scans up to budget keys under ratelimit: for
// keys without a TTL.
func observeRedis(ctx context.Context, rdb redis.UniversalClient, budget int) (RedisState, error) {
	st := RedisState{KeysWithoutTTL: KeysWithoutTTL{Sample: []StaleRedis{}}}
	start := time.Now()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return st, fmt.Errorf("ping: %w", err)
	}
	st.Reachable = true
	st.PingMS = float64(time.Since(start).Microseconds()) / 1000

	seen := map[string]bool{} // limiter keys already sampled
	var cursor uint64
	for {
		keys, next, err := rdb.Scan(ctx, cursor, "ratelimit:*", 500).Result()
		if err != nil {
			return st, fmt.Errorf("scan: %w", err)
		}
		if len(keys) > 0 {
			cmds, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, k := range keys {
					p.PTTL(ctx, k)
				}
				return nil
			})
			if err != nil && err != redis.Nil {
				return st, fmt.Errorf("pttl: %w", err)
			}
			for i, c := range cmds {
				// go-redis passes PTTL's -1 ("no expiry") through unscaled.
				if d, err := c.(*redis.DurationCmd).Result(); err == nil && d == -1 {
					st.KeysWithoutTTL.Count++
					// One sample per limiter key: its Redis keys share one
					// repair.
					lk := limiterKey(keys[i])
					if len(st.KeysWithoutTTL.Sample) < 20 && (lk == "" || !seen[lk]) {
						seen[lk] = lk != ""
						st.KeysWithoutTTL.Sample = append(st.KeysWithoutTTL.Sample, StaleRedis{RedisKey: keys[i], Key: lk})
					}
				}
			}
		}
		st.KeysWithoutTTL.Scanned += len(keys)
		cursor = next
		if cursor == 0 {
			st.KeysWithoutTTL.Complete = true
			return st, nil
		}
		if st.KeysWithoutTTL.Scanned >= budget {
			return st, nil
		}
	}
}
