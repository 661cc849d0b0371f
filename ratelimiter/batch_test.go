package ratelimiter

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/operator-dev/operator/internal/redistest"
)

var echoScript = redis.NewScript(`return {tonumber(ARGV[1]), redis.call('INCR', KEYS[1])}`)

// TestBatcher checks that every concurrent caller gets its own reply, that
// every call runs exactly once, and that a lost script cache is recovered.
func TestBatcher(t *testing.T) {
	for _, backend := range redistest.Backends() {
		t.Run(backend.Name, func(t *testing.T) {
			rdb := redistest.Client(t, backend.Start(t))
			for _, max := range []int{1, 2, 8} {
				b := newBatcher(rdb, max, 2*time.Second)
				ctx := context.Background()
				key := "ratelimit:{batch}:" + strconv.Itoa(max)
				var wg sync.WaitGroup
				for i := range 500 {
					wg.Go(func() {
						if i == 250 {
							rdb.ScriptFlush(ctx) // NOSCRIPT mid-flight
						}
						v, err := b.run(ctx, echoScript, []string{key}, i)
						if err != nil || len(v) != 2 || v[0] != int64(i) {
							t.Errorf("max %d call %d: %v, %v", max, i, v, err)
						}
					})
				}
				wg.Wait()
				if n, _ := rdb.Get(ctx, key).Int(); n != 500 {
					t.Errorf("max %d: the script ran %d times, want 500", max, n)
				}
				rdb.Del(ctx, key)
				if b.inflight != 0 || len(b.queue) != 0 {
					t.Errorf("max %d: %d in flight and %d queued after all calls returned", max, b.inflight, len(b.queue))
				}
			}
		})
	}
}

// TestBatcherAbandon checks that queued callers whose context ends leave at
// once, and that the batcher keeps working after they do.
func TestBatcherAbandon(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv.Addr)
	slow := redis.NewScript(`local t = redis.call('TIME'); local s = tonumber(t[1]) * 1000000 + tonumber(t[2]);
repeat local u = redis.call('TIME') until tonumber(u[1]) * 1000000 + tonumber(u[2]) - s > 200000
return {1}`)
	b := newBatcher(rdb, 1, 2*time.Second)
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := b.run(context.Background(), slow, []string{"ratelimit:{slow}"}); err != nil {
			t.Errorf("slow call: %v", err)
		}
	})
	// Wait until the slow call holds the only pipeline slot.
	eventually(t, time.Second, "slow call in flight", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.inflight == 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := b.run(ctx, echoScript, []string{"ratelimit:{a}"}, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("queued call: %v, want deadline exceeded", err)
	}
	wg.Wait()
	v, err := b.run(context.Background(), echoScript, []string{"ratelimit:{a}"}, 7)
	if err != nil || v[0] != 7 {
		t.Fatalf("after an abandoned call: %v, %v", v, err)
	}
	if n, _ := rdb.Get(context.Background(), "ratelimit:{a}").Int(); n != 1 {
		t.Errorf("the abandoned call ran: counter %d, want 1", n)
	}
}
