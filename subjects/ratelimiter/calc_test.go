package ratelimiter

import (
	"math"
	"strings"
	"testing"

	"github.com/operator-dev/operator/ratelimiter/api"
)

func TestQuantile(t *testing.T) {
	inf := math.Inf(1)
	h := func(counts ...float64) histogram {
		return histogram{bounds: []float64{0.001, 0.01, 0.1, inf}, counts: counts}
	}
	tests := []struct {
		name string
		h    histogram
		want float64
	}{
		{"empty", h(0, 0, 0, 0), 0},
		{"all in first bucket", h(100, 100, 100, 100), 0.00099},
		{"tail in third bucket", h(90, 98, 100, 100), 0.01 + 0.09*0.5},
		{"tail in +Inf", h(0, 0, 0, 10), 0.1},
	}
	for _, tt := range tests {
		if got := quantile(0.99, tt.h); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("%s: p99 = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestDeltaRefusesResets(t *testing.T) {
	a := histogram{bounds: []float64{1, math.Inf(1)}, counts: []float64{5, 10}}
	b := histogram{bounds: []float64{1, math.Inf(1)}, counts: []float64{7, 15}}
	d, ok := delta(a, b)
	if !ok || d.counts[0] != 2 || d.counts[1] != 5 {
		t.Fatalf("delta = %+v, %v", d, ok)
	}
	if _, ok := delta(b, a); ok {
		t.Fatal("a counter reset was taken for a delta")
	}
}

const metricsText = `# TYPE ratelimiter_check_duration_seconds histogram
ratelimiter_check_duration_seconds_bucket{node="n1",le="0.001"} 90
ratelimiter_check_duration_seconds_bucket{node="n1",le="0.01"} 100
ratelimiter_check_duration_seconds_bucket{node="n1",le="+Inf"} 100
ratelimiter_check_duration_seconds_sum{node="n1"} 0.1
ratelimiter_check_duration_seconds_count{node="n1"} 100
# TYPE ratelimiter_redis_duration_seconds histogram
ratelimiter_redis_duration_seconds_bucket{node="n1",op="check",le="0.001"} 10
ratelimiter_redis_duration_seconds_bucket{node="n1",op="check",le="0.01"} 10
ratelimiter_redis_duration_seconds_bucket{node="n1",op="check",le="+Inf"} 10
ratelimiter_redis_duration_seconds_sum{node="n1",op="check"} 0.001
ratelimiter_redis_duration_seconds_count{node="n1",op="check"} 10
ratelimiter_redis_duration_seconds_bucket{node="n1",op="sync",le="0.001"} 0
ratelimiter_redis_duration_seconds_bucket{node="n1",op="sync",le="0.01"} 5
ratelimiter_redis_duration_seconds_bucket{node="n1",op="sync",le="+Inf"} 5
ratelimiter_redis_duration_seconds_sum{node="n1",op="sync"} 0.02
ratelimiter_redis_duration_seconds_count{node="n1",op="sync"} 5
# TYPE ratelimiter_checks_total counter
ratelimiter_checks_total{node="n1",result="allowed",algorithm="gcra"} 60
ratelimiter_checks_total{node="n1",result="allowed",algorithm="fixed_window"} 30
ratelimiter_checks_total{node="n1",result="denied",algorithm="gcra"} 10
# TYPE ratelimiter_redis_up gauge
ratelimiter_redis_up{node="n1"} 1
# TYPE ratelimiter_draining gauge
ratelimiter_draining{node="n1"} 0
# TYPE ratelimiter_clock_offset_seconds gauge
ratelimiter_clock_offset_seconds{node="n1"} -0.75
`

func TestParseScrape(t *testing.T) {
	s, err := parseScrape(strings.NewReader(metricsText))
	if err != nil {
		t.Fatal(err)
	}
	if s.checks["allowed"] != 90 || s.checks["denied"] != 10 {
		t.Errorf("checks %v", s.checks)
	}
	if !s.redisUp || s.draining || !s.hasOffset || s.clockOffset != -0.75 {
		t.Errorf("gauges %+v", s)
	}
	// sum by (le) over op: 10 + 0 below 1ms, 15 in all.
	if s.redis.counts[0] != 10 || s.redis.counts[2] != 15 {
		t.Errorf("redis histogram %+v", s.redis)
	}
	if _, err := parseScrape(strings.NewReader("# nothing here\n")); err == nil {
		t.Error("metrics without the check histogram accepted")
	}
}

func TestHotTraffic(t *testing.T) {
	// Two nodes; buckets of 1s; newest data ends at 20.5s.
	n1 := api.HotKeys{Node: "n1", BucketMS: 1000, ToMS: 20_500, Keys: []api.HotKey{
		{Key: "k", Checks: 150, Buckets: []api.HotKeyBucket{
			{StartMS: 9000, Checks: 50, Allowed: 50},
			{StartMS: 10000, Checks: 50, Allowed: 50},
			{StartMS: 19000, Checks: 50, Allowed: 10, Denied: 40},
		}},
	}}
	n2 := api.HotKeys{Node: "n2", BucketMS: 1000, ToMS: 20_400, Keys: []api.HotKey{
		{Key: "k", Checks: 60, Buckets: []api.HotKeyBucket{
			{StartMS: 10000, Checks: 50, Allowed: 50},
			{StartMS: 20000, Checks: 10, Allowed: 0, Denied: 10},
		}},
		{Key: "quiet", Checks: 1, Buckets: []api.HotKeyBucket{{StartMS: 20000, Checks: 1, Allowed: 1}}},
	}}
	ht := mergeHotKeys([]api.HotKeys{n1, n2})
	if ht.curMS != 20000 {
		t.Fatalf("curMS = %d", ht.curMS)
	}
	k := ht.keys["k"]
	// A 2s window over 9s and 10s: 50 + 100 allowed (boundary burst).
	if got := ht.allowedMaxWindow(k, 2000, 0); got != 150 {
		t.Errorf("allowedMaxWindow(2s) = %d, want 150", got)
	}
	if got := ht.allowedMaxWindow(k, 1000, 0); got != 100 {
		t.Errorf("allowedMaxWindow(1s) = %d, want 100", got)
	}
	// After a limit change at 9.5s, only windows starting at 10s count.
	if got := ht.allowedMaxWindow(k, 2000, 9500); got != 100 {
		t.Errorf("allowedMaxWindow(2s, since 9.5s) = %d, want 100", got)
	}
	// The last 2s: buckets 19s and 20s.
	if got := ht.allowedLastWindow(k, 2000); got != 10 {
		t.Errorf("allowedLastWindow(2s) = %d, want 10", got)
	}
	// Rates over the 5 complete buckets 15..19s: 50 checks, 40 denied.
	c, d := ht.rates(k)
	if c != 10 || d != 8 {
		t.Errorf("rates = %v/s, %v/s; want 10, 8", c, d)
	}
	if b := ht.busiest(1); len(b) != 1 || b[0].key != "k" {
		t.Errorf("busiest = %v", b)
	}
}

func TestLimiterKey(t *testing.T) {
	tests := map[string]string{
		"ratelimit:{user:42}:swl":     "user:42",
		"ratelimit:{user:42}:swl:seq": "user:42",
		"ratelimit:{a}:fw":            "a",
		"ratelimit:{config}:limits":   "",
		"ratelimit:{nodes}:hb":        "",
		"other:{x}:fw":                "",
		"ratelimit:{}:fw":             "",
	}
	for in, want := range tests {
		if got := limiterKey(in); got != want {
			t.Errorf("limiterKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDriftAndMedian(t *testing.T) {
	if d := drift(map[string]float64{"a": 10, "b": 3, "c": 7}); d != 7 {
		t.Errorf("drift = %v", d)
	}
	if d := drift(map[string]float64{"a": 10}); d != 0 {
		t.Errorf("drift of one = %v", d)
	}
	if m := median([]float64{5, 1, 100}); m != 5 {
		t.Errorf("median = %v", m)
	}
	if m := median([]float64{1, 2, 3, 4}); m != 2.5 {
		t.Errorf("median = %v", m)
	}
}
