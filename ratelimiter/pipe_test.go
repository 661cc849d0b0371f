package ratelimiter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/operator-dev/operator/internal/redistest"
)

// TestPipeRoutesEveryReplyToItsCall: many callers, each with its own key,
// send decisions back to back through the pipe; each reply must be its own
// (the count of its key goes up by one each time), however the calls were
// batched.
func TestPipeRoutesEveryReplyToItsCall(t *testing.T) {
	for _, backend := range redistest.Backends() {
		t.Run(backend.Name, func(t *testing.T) {
			l := newLimiter(t, backend.Start(t), Config{DefaultLimit: 1_000_000, DefaultWindow: time.Hour, DefaultAlgorithm: FixedWindow})
			if l.pipe == nil {
				t.Fatal("no pipe for a single Redis")
			}
			var wg sync.WaitGroup
			errs := make(chan error, 64)
			for g := range 32 {
				wg.Go(func() {
					key := fmt.Sprintf("route:%d", g)
					for i := int64(1); i <= 150; i++ {
						d, err := l.Check(context.Background(), key, 1)
						if err != nil {
							errs <- err
							return
						}
						if d.Count != i || d.Key != key {
							errs <- fmt.Errorf("%s decision %d has count %d", key, i, d.Count)
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// TestPipeSurvivesAKilledConnection: Redis drops the node's connections;
// the calls in flight fail as Redis unavailable and the next ones go
// through new connections.
func TestPipeSurvivesAKilledConnection(t *testing.T) {
	srv := redistest.Start(t)
	l := newLimiter(t, srv.Addr, Config{DefaultLimit: 1_000_000, DefaultAlgorithm: FixedWindow})
	admin := redistest.Client(t, srv.Addr)
	ctx := context.Background()
	if _, err := l.Check(ctx, "kill:1", 1); err != nil {
		t.Fatal(err)
	}
	if err := admin.Do(ctx, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes").Err(); err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for i := range 20 {
		d, err := l.Check(ctx, "kill:1", 1)
		if err == nil {
			if d.Count < 2 {
				t.Fatalf("count %d after a reconnect", d.Count)
			}
			return
		}
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("check %d: %v, want an ErrUnavailable", i, err)
		}
		lastErr = err
	}
	t.Fatalf("no decision after the connections were killed: %v", lastErr)
}

// TestPipeTimesOutAndRecycles: a Redis that stops answering times the
// calls out; the replies that come later are thrown away, and the calls
// after them get their own replies.
func TestPipeTimesOutAndRecycles(t *testing.T) {
	srv := redistest.Start(t)
	l := newLimiter(t, srv.Addr, Config{DefaultLimit: 1_000_000, DefaultAlgorithm: FixedWindow, RedisTimeout: 50 * time.Millisecond,
		OnRedisError: FailClosed})
	admin := redistest.Client(t, srv.Addr)
	ctx := context.Background()
	if _, err := l.Check(ctx, "warm", 1); err != nil { // limits loaded, connections open
		t.Fatal(err)
	}
	if err := admin.Do(ctx, "CLIENT", "PAUSE", "300", "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	timedOut := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			_, err := l.Check(ctx, fmt.Sprintf("slow:%d", i), 1)
			timedOut <- err
		})
	}
	wg.Wait()
	close(timedOut)
	for err := range timedOut {
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("a call to a paused Redis: %v, want ErrUnavailable", err)
		}
	}
	time.Sleep(400 * time.Millisecond) // the pause ends; late replies arrive
	for i := int64(1); i <= 20; i++ {
		d, err := l.Check(ctx, "after-pause", 1)
		if err != nil {
			t.Fatalf("after the pause: %v", err)
		}
		if d.Count != i {
			t.Fatalf("after the pause, decision %d has count %d: a late reply went to the wrong call", i, d.Count)
		}
	}
}
