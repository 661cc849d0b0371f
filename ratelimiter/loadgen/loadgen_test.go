package loadgen

import (
	"context"
	"testing"
	"time"

	"github.com/operator-dev/operator/internal/redistest"
	"github.com/operator-dev/operator/ratelimiter"
	"github.com/operator-dev/operator/ratelimiter/api"
	"github.com/operator-dev/operator/ratelimiter/client"
)

func startNode(t *testing.T) *ratelimiter.Node {
	t.Helper()
	srv := redistest.Start(t)
	n, err := ratelimiter.StartNode(context.Background(), ratelimiter.NodeConfig{Listen: "127.0.0.1:0", RedisURL: srv.URL(),
		Limiter: ratelimiter.Config{NodeID: "n1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Stop() })
	return n
}

func TestSteadyReportsEverySecond(t *testing.T) {
	n := startNode(t)
	var seconds []Second
	tot, err := Run(context.Background(), Config{Targets: []string{n.URL}, RPS: 50, Keys: 5, Duration: 2500 * time.Millisecond},
		func(s Second) { seconds = append(seconds, s) })
	if err != nil {
		t.Fatal(err)
	}
	if len(seconds) != 2 || tot.Seconds != 2 {
		t.Fatalf("reported %d seconds (%d in totals), want 2", len(seconds), tot.Seconds)
	}
	// 50/s for 2.5s, the default limit is far away: all allowed, none lost.
	sent := tot.Allowed + tot.Denied + tot.Errors + tot.Skipped
	if tot.Errors != 0 || tot.Skipped != 0 || tot.Denied != 0 || sent < 110 || sent > 130 {
		t.Fatalf("totals %+v", tot)
	}
}

// TestBoundaryStraddlesTheWindowEnd checks that the two bursts land in two
// fixed windows: both are admitted in full, twice the limit within half a
// second.
func TestBoundaryStraddlesTheWindowEnd(t *testing.T) {
	n := startNode(t)
	c, err := client.New(n.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutLimit(context.Background(), "burst:1", api.LimitSpec{Limit: 10, WindowMS: 2000, Algorithm: api.AlgorithmFixedWindow}); err != nil {
		t.Fatal(err)
	}
	// One cycle: a probe opens the window (1 unit), 10 just before its end
	// (9 fit), 10 just after (a new window: all fit).
	tot, err := Run(context.Background(), Config{Targets: []string{n.URL}, Pattern: Boundary, BurstKey: "burst:1",
		Burst: 10, Window: 2 * time.Second, Duration: 2600 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tot.Allowed < 19 || tot.Errors != 0 {
		t.Fatalf("totals %+v: want the second burst admitted in a new window (19 or more allowed)", tot)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{
		{},
		{Targets: []string{"http://x"}, Pattern: "zigzag"},
		{Targets: []string{"http://x"}, RPS: -1},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}
