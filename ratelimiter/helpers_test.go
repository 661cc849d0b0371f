package ratelimiter

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/operator-dev/operator/internal/redistest"
)

// testClock is a settable node clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newLimiter returns a limiter on a fresh client of addr.
func newLimiter(tb testing.TB, addr string, cfg Config) *Limiter {
	tb.Helper()
	if cfg.NodeID == "" {
		cfg.NodeID = "n1"
	}
	if cfg.RedisTimeout == 0 {
		cfg.RedisTimeout = 2 * time.Second // -race on a busy machine
	}
	l, err := New(redistest.Client(tb, addr), cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(l.Close)
	return l
}

// runLimiter runs l.Run until the test ends.
func runLimiter(tb testing.TB, l *Limiter) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Run: %v", err)
		}
	})
}

// eventually polls cond every few milliseconds until it holds or the
// deadline passes.
func eventually(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not true within %s", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// keysWithoutTTL scans the ratelimit: namespace and returns keys that have
// no TTL.
func keysWithoutTTL(tb testing.TB, rdb *redis.Client) (total int, missing []string) {
	tb.Helper()
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, "ratelimit:*", 1000).Iterator()
	for iter.Next(ctx) {
		total++
		ttl, err := rdb.PTTL(ctx, iter.Val()).Result()
		if err != nil {
			tb.Fatalf("PTTL %s: %v", iter.Val(), err)
		}
		if ttl < 0 && ttl != -2 {
			missing = append(missing, iter.Val())
		}
	}
	if err := iter.Err(); err != nil {
		tb.Fatalf("SCAN: %v", err)
	}
	return total, missing
}
