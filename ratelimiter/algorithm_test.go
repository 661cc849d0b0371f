package ratelimiter

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/operator-dev/operator/internal/redistest"
)

// step is one check in an algorithm scenario, after advancing the node clock.
type step struct {
	advance       time.Duration
	cost          int64
	wantAllowed   bool
	wantRemaining int64
	// wantRetry is checked when non-zero.
	wantRetry time.Duration
}

func allowN(n int, limit int64) []step {
	var s []step
	for i := range n {
		s = append(s, step{cost: 1, wantAllowed: true, wantRemaining: limit - int64(i) - 1})
	}
	return s
}

func concat(parts ...[]step) []step {
	var out []step
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// TestAlgorithms runs every algorithm's script through the same scenarios on
// miniredis and on a real redis-server, on a controlled node clock.
func TestAlgorithms(t *testing.T) {
	const limit = 10
	window := time.Second
	common := []struct {
		name  string
		steps []step
	}{
		{"allows up to the limit, then denies", concat(allowN(10, limit), []step{{cost: 1, wantAllowed: false, wantRemaining: 0}})},
		{"weighted cost", []step{
			{cost: 4, wantAllowed: true, wantRemaining: 6},
			{cost: 4, wantAllowed: true, wantRemaining: 2},
			{cost: 4, wantAllowed: false, wantRemaining: 2},
			{cost: 2, wantAllowed: true, wantRemaining: 0},
			{cost: 1, wantAllowed: false, wantRemaining: 0},
		}},
		{"cost equal to the limit", []step{
			{cost: 10, wantAllowed: true, wantRemaining: 0},
			{cost: 1, wantAllowed: false, wantRemaining: 0},
		}},
	}
	specific := map[Algorithm][]struct {
		name  string
		steps []step
	}{
		SlidingWindowLog: {
			{"units leave exactly one window after they were used", concat(
				[]step{{cost: 5, wantAllowed: true, wantRemaining: 5}},
				[]step{{advance: 500 * time.Millisecond, cost: 5, wantAllowed: true, wantRemaining: 0}},
				[]step{{advance: 499 * time.Millisecond, cost: 1, wantAllowed: false, wantRetry: time.Millisecond}},
				[]step{{advance: time.Millisecond, cost: 5, wantAllowed: true, wantRemaining: 0}},
				[]step{{cost: 1, wantAllowed: false, wantRetry: 500 * time.Millisecond}},
			)},
		},
		SlidingWindowCounter: {
			{"the previous window weighs in proportion to its overlap", concat(
				allowN(10, limit),
				[]step{{advance: time.Second, cost: 1, wantAllowed: false, wantRetry: 100 * time.Millisecond}},
				[]step{{advance: 500 * time.Millisecond, cost: 5, wantAllowed: true, wantRemaining: 0}},
				[]step{{cost: 1, wantAllowed: false}},
			)},
			{"two idle windows forget everything", concat(
				allowN(10, limit),
				[]step{{advance: 2 * time.Second, cost: 10, wantAllowed: true, wantRemaining: 0}},
			)},
		},
		FixedWindow: {
			{"a new window starts when the previous one ends (boundary burst)", concat(
				allowN(10, limit),
				[]step{{advance: 999 * time.Millisecond, cost: 1, wantAllowed: false, wantRetry: time.Millisecond}},
				[]step{{advance: time.Millisecond, cost: 10, wantAllowed: true, wantRemaining: 0}},
			)},
		},
		GCRA: {
			{"burst of the limit, then one unit per interval", concat(
				allowN(10, limit),
				[]step{{cost: 1, wantAllowed: false, wantRetry: 100 * time.Millisecond}},
				[]step{{advance: 100 * time.Millisecond, cost: 1, wantAllowed: true, wantRemaining: 0}},
				[]step{{advance: 250 * time.Millisecond, cost: 2, wantAllowed: true, wantRemaining: 0}},
				[]step{{cost: 1, wantAllowed: false, wantRetry: 50 * time.Millisecond}},
			)},
			{"denied requests do not add debt", concat(
				allowN(10, limit),
				[]step{{cost: 1, wantAllowed: false}, {cost: 1, wantAllowed: false}, {cost: 1, wantAllowed: false}},
				[]step{{advance: 100 * time.Millisecond, cost: 1, wantAllowed: true, wantRemaining: 0}},
			)},
		},
	}

	for _, backend := range redistest.Backends() {
		t.Run(backend.Name, func(t *testing.T) {
			addr := backend.Start(t)
			for _, alg := range Algorithms() {
				cases := append(common[:len(common):len(common)], specific[alg]...)
				for i, tc := range cases {
					t.Run(string(alg)+"/"+tc.name, func(t *testing.T) {
						clock := newTestClock()
						l := newLimiter(t, addr, Config{
							Clock: ClockNode, Now: clock.Now,
							DefaultLimit: limit, DefaultWindow: window, DefaultAlgorithm: alg,
						})
						key := fmt.Sprintf("alg:%s:%d", alg, i)
						for j, s := range tc.steps {
							clock.Advance(s.advance)
							d, err := l.Check(context.Background(), key, s.cost)
							if err != nil {
								t.Fatalf("step %d: Check: %v", j, err)
							}
							if d.Allowed != s.wantAllowed {
								t.Fatalf("step %d: allowed = %v, want %v (decision %+v)", j, d.Allowed, s.wantAllowed, d)
							}
							if s.wantAllowed && d.Remaining != s.wantRemaining {
								t.Errorf("step %d: remaining = %d, want %d", j, d.Remaining, s.wantRemaining)
							}
							if !s.wantAllowed && d.RetryAfter <= 0 {
								t.Errorf("step %d: denied with retry after %s, want > 0", j, d.RetryAfter)
							}
							if s.wantRetry != 0 && !approx(d.RetryAfter, s.wantRetry) {
								t.Errorf("step %d: retry after = %s, want %s", j, d.RetryAfter, s.wantRetry)
							}
							if s.wantAllowed && d.RetryAfter != 0 {
								t.Errorf("step %d: allowed with retry after %s, want 0", j, d.RetryAfter)
							}
							if d.ResetAfter < 0 || d.ResetAfter > 2*window {
								t.Errorf("step %d: reset after = %s, want within [0, %s]", j, d.ResetAfter, 2*window)
							}
							if !d.Time.Equal(clock.Now().Truncate(time.Microsecond)) {
								t.Errorf("step %d: decision time = %s, want the node clock %s", j, d.Time, clock.Now())
							}
						}
						total, missing := keysWithoutTTL(t, redistest.Client(t, addr))
						if total == 0 || len(missing) > 0 {
							t.Errorf("after the scenario: %d keys, without TTL: %v", total, missing)
						}
					})
				}
			}
		})
	}
}

// approx compares durations to a microsecond, the scripts' resolution.
func approx(got, want time.Duration) bool {
	d := got - want
	return d > -2*time.Microsecond && d < 2*time.Microsecond
}

// TestAlgorithmsRedisClock checks every algorithm with time read by TIME
// inside the script, on both backends.
func TestAlgorithmsRedisClock(t *testing.T) {
	for _, backend := range redistest.Backends() {
		t.Run(backend.Name, func(t *testing.T) {
			addr := backend.Start(t)
			for _, alg := range Algorithms() {
				t.Run(string(alg), func(t *testing.T) {
					l := newLimiter(t, addr, Config{DefaultLimit: 5, DefaultWindow: time.Minute, DefaultAlgorithm: alg})
					before := time.Now()
					for i := range 5 {
						d, err := l.Check(context.Background(), "redis-clock", 1)
						if err != nil || !d.Allowed || d.Remaining != int64(4-i) {
							t.Fatalf("check %d: %+v, %v; want allowed with %d remaining", i, d, err, 4-i)
						}
						if d.Time.Before(before.Add(-time.Minute)) || d.Time.After(time.Now().Add(time.Minute)) {
							t.Fatalf("decision time %s is not the Redis clock (now %s)", d.Time, time.Now())
						}
					}
					d, err := l.Check(context.Background(), "redis-clock", 1)
					if err != nil || d.Allowed {
						t.Fatalf("6th check: %+v, %v; want denied", d, err)
					}
				})
			}
		})
	}
}

// TestCounterPeekDoesNotConsume checks that reading a counter is free, and
// that it reports what the check path counted.
func TestCounterPeekDoesNotConsume(t *testing.T) {
	for _, backend := range redistest.Backends() {
		t.Run(backend.Name, func(t *testing.T) {
			addr := backend.Start(t)
			for _, alg := range Algorithms() {
				t.Run(string(alg), func(t *testing.T) {
					clock := newTestClock()
					l := newLimiter(t, addr, Config{Clock: ClockNode, Now: clock.Now, DefaultLimit: 10, DefaultWindow: time.Minute, DefaultAlgorithm: alg})
					ctx := context.Background()
					c, err := l.Counter(ctx, "peek")
					if err != nil || c.Count != 0 || c.Remaining != 10 || c.TTLMS != -2 {
						t.Fatalf("fresh counter = %+v, %v; want count 0, remaining 10, ttl -2", c, err)
					}
					if _, err := l.Check(ctx, "peek", 3); err != nil {
						t.Fatal(err)
					}
					for range 3 {
						c, err = l.Counter(ctx, "peek")
						if err != nil {
							t.Fatal(err)
						}
					}
					if c.Count != 3 || c.Remaining != 7 || c.Limit != 10 || c.WindowMS != 60000 || c.Algorithm != string(alg) {
						t.Errorf("counter = %+v; want count 3, remaining 7, limit 10, window 60000", c)
					}
					if c.TTLMS <= 0 || c.TTLMS > 120000 {
						t.Errorf("ttl_ms = %d, want within (0, 120000]", c.TTLMS)
					}
				})
			}
		})
	}
}

// TestAlgorithmEdges covers arithmetic edges: an emission interval that is
// not a whole number of microseconds, a large cost on the log (several ZADD
// batches), and a node clock that goes backwards.
func TestAlgorithmEdges(t *testing.T) {
	cases := []struct {
		name   string
		limit  Limit
		clock  []time.Duration // advance before each check
		costs  []int64
		wantOK []bool
	}{
		{"gcra allows the whole burst with a fractional interval", Limit{7, time.Minute, GCRA},
			[]time.Duration{0, 0, 0, 0, 0, 0, 0, 0}, []int64{1, 1, 1, 1, 1, 1, 1, 1},
			[]bool{true, true, true, true, true, true, true, false}},
		{"gcra fractional interval refills one unit", Limit{7, time.Minute, GCRA},
			// The interval is 8571428.57 us; the clock resolution is 1 us.
			[]time.Duration{0, 8571429 * time.Microsecond, 0}, []int64{7, 1, 1},
			[]bool{true, true, false}},
		{"sliding log with a cost spanning several batches", Limit{1000, time.Minute, SlidingWindowLog},
			[]time.Duration{0, 0, 0}, []int64{600, 400, 1},
			[]bool{true, true, false}},
		{"sliding log when the node clock goes back", Limit{3, time.Second, SlidingWindowLog},
			[]time.Duration{0, 0, -500 * time.Millisecond, 0, 2 * time.Second},
			[]int64{1, 1, 1, 1, 3}, []bool{true, true, true, false, true}},
		{"fixed window when the node clock goes back", Limit{2, time.Second, FixedWindow},
			[]time.Duration{0, -time.Second, 0}, []int64{1, 1, 1}, []bool{true, true, false}},
		{"counter when the node clock goes back", Limit{2, time.Second, SlidingWindowCounter},
			[]time.Duration{0, -time.Second, 0}, []int64{1, 1, 1}, []bool{true, true, false}},
		// The arrival time is absolute, so a clock that went back sees more
		// debt: stricter, never looser.
		{"gcra when the node clock goes back", Limit{2, time.Second, GCRA},
			[]time.Duration{0, -time.Second, time.Second, 0}, []int64{1, 1, 1, 1}, []bool{true, false, true, false}},
	}
	for _, backend := range redistest.Backends() {
		t.Run(backend.Name, func(t *testing.T) {
			addr := backend.Start(t)
			for i, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					clock := newTestClock()
					l := newLimiter(t, addr, Config{Clock: ClockNode, Now: clock.Now,
						DefaultLimit: tc.limit.Limit, DefaultWindow: tc.limit.Window, DefaultAlgorithm: tc.limit.Algorithm})
					key := fmt.Sprintf("edge:%d", i)
					for j := range tc.costs {
						clock.Advance(tc.clock[j])
						d, err := l.Check(context.Background(), key, tc.costs[j])
						if err != nil {
							t.Fatalf("check %d: %v", j, err)
						}
						if d.Allowed != tc.wantOK[j] {
							t.Fatalf("check %d (cost %d): allowed = %v, want %v; %+v", j, tc.costs[j], d.Allowed, tc.wantOK[j], d)
						}
					}
				})
			}
		})
	}
}
