package ratelimiter

import (
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/operator-dev/operator/internal/redistest"
	"github.com/operator-dev/operator/ratelimiter/api"
)

// TestOverLimitCache: a key with no quota left is denied from the node's
// cache, with the answer Redis gives; and whatever could give quota back
// (the window passing, a reset on another node, a raised limit) is seen.
func TestOverLimitCache(t *testing.T) {
	addr := redistest.Start(t).Addr
	nodes := startCluster(t, addr, 2, Config{DefaultLimit: 1000})
	a, b := nodes[0], nodes[1]
	hits := func(n *testNode) float64 { return testutil.ToFloat64(n.l.metrics.overLimitHits) }
	put := func(key string, limit int64, window time.Duration) {
		t.Helper()
		if r := a.do(t, "PUT", "/api/v1/limits/"+key, api.LimitSpec{Limit: limit, WindowMS: window.Milliseconds(), Algorithm: "fixed_window"}); r.status != http.StatusOK {
			t.Fatalf("PUT limit: %d %s", r.status, r.body)
		}
		want := a.l.Status().LimitsVersion
		for _, n := range nodes {
			eventually(t, 2*time.Second, "limit applied", func() bool { return n.l.Status().LimitsVersion >= want })
		}
	}
	put("c:*", 2, time.Minute)
	put("win:*", 2, 1500*time.Millisecond)

	t.Run("a denial with no quota left is answered from the cache, as Redis would", func(t *testing.T) {
		a.check(t, "c:1", 1)
		a.check(t, "c:1", 1)
		first, r1 := a.check(t, "c:1", 1) // from Redis
		before := hits(a)
		second, r2 := a.check(t, "c:1", 1) // from the cache
		if hits(a) != before+1 {
			t.Fatalf("cache hits %v -> %v: the second denial went to Redis", before, hits(a))
		}
		if r1.status != http.StatusTooManyRequests || r2.status != http.StatusTooManyRequests ||
			second.Limit != first.Limit || second.Remaining != 0 || second.Algorithm != first.Algorithm ||
			second.RetryAfterMS > first.RetryAfterMS || second.RetryAfterMS < first.RetryAfterMS-1000 {
			t.Fatalf("from Redis %+v (%d), from the cache %+v (%d)", first, r1.status, second, r2.status)
		}
		if r2.header.Get("Ratelimit-Policy") != r1.header.Get("Ratelimit-Policy") || r2.header.Get("Retry-After") == "" {
			t.Errorf("headers: %v vs %v", r1.header, r2.header)
		}
	})

	t.Run("a denial that leaves quota is not cached", func(t *testing.T) {
		a.check(t, "c:2", 1)
		before := hits(a)
		if _, r := a.check(t, "c:2", 2); r.status != http.StatusTooManyRequests {
			t.Fatalf("cost 2 with one unit left: %d", r.status)
		}
		if _, r := a.check(t, "c:2", 1); r.status != http.StatusOK || hits(a) != before {
			t.Fatalf("cost 1 after a cost-2 denial: %d, cache hits %v -> %v", r.status, before, hits(a))
		}
	})

	t.Run("the entry ends when the window does", func(t *testing.T) {
		for range 3 {
			a.check(t, "win:1", 1)
		}
		if _, r := a.check(t, "win:1", 1); r.status != http.StatusTooManyRequests {
			t.Fatalf("over the limit: %d", r.status)
		}
		eventually(t, 3*time.Second, "allowed once the window has passed", func() bool {
			_, r := a.check(t, "win:1", 1)
			return r.status == http.StatusOK
		})
	})

	t.Run("a reset on another node reaches this node's cache", func(t *testing.T) {
		for range 3 {
			b.check(t, "c:3", 1)
		}
		b.check(t, "c:3", 1) // cached on b now
		if r := a.do(t, "POST", "/api/v1/counters/c:3/reset", nil); r.status != http.StatusOK {
			t.Fatalf("reset: %d %s", r.status, r.body)
		}
		eventually(t, time.Second, "b allows the reset key", func() bool {
			_, r := b.check(t, "c:3", 1)
			return r.status == http.StatusOK
		})
	})

	t.Run("a raised limit reaches every node's cache", func(t *testing.T) {
		for range 3 {
			b.check(t, "c:4", 1)
		}
		b.check(t, "c:4", 1)
		put("c:4", 10, time.Minute)
		if _, r := b.check(t, "c:4", 1); r.status != http.StatusOK {
			t.Fatalf("after raising the limit: %d", r.status)
		}
	})

	t.Run("no cache on the node clock", func(t *testing.T) {
		n := startNode(t, addr, Config{NodeID: "clock", Clock: ClockNode}, HandlerOptions{})
		if n.l.overLimit != nil {
			t.Fatal("a node deciding on its own clock keeps an over-limit cache")
		}
	})
}

func TestOverLimitBounds(t *testing.T) {
	c := newOverLimit(overLimitShards) // one entry per shard
	now := time.Now()
	e := overLimitEntry{until: now.Add(time.Minute), sentAt: now}
	for i := range 1000 {
		c.remember("k"+string(rune('a'+i%26))+string(rune('a'+i/26)), e)
	}
	if n := c.len(); n > overLimitShards {
		t.Fatalf("%d entries, over the bound of %d", n, overLimitShards)
	}
	if newOverLimit(0) != nil {
		t.Error("size 0 made a cache")
	}
	// Expired entries make room.
	c = newOverLimit(overLimitShards)
	c.remember("old", overLimitEntry{until: now.Add(-time.Second), sentAt: now.Add(-time.Minute)})
	if _, ok := c.lookup("old", 0, now); ok {
		t.Error("an expired entry was found")
	}
}
