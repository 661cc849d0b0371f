package bench_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/operator-dev/operator/internal/redistest"
	"github.com/operator-dev/operator/ratelimiter"
	"github.com/operator-dev/operator/ratelimiter/bench"
)

func TestRunAgainstNodes(t *testing.T) {
	addr := redistest.Start(t).Addr
	var targets []string
	for _, id := range []string{"b1", "b2"} {
		l, err := ratelimiter.New(redistest.Client(t, addr), ratelimiter.Config{NodeID: id, DefaultLimit: 5, RedisTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(l.Close)
		hs := httptest.NewServer(ratelimiter.NewHandler(l, ratelimiter.HandlerOptions{}))
		t.Cleanup(hs.Close)
		targets = append(targets, hs.URL)
	}
	for _, tc := range []struct {
		name   string
		client *http.Client
		prefix string
	}{
		{"own connections", nil, "raw:"},
		{"net/http client", &http.Client{}, "nethttp:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := bench.Run(context.Background(), bench.Config{Targets: targets, Concurrency: 4, Duration: 300 * time.Millisecond, Keys: 3, KeyPrefix: tc.prefix, HTTPClient: tc.client})
			if err != nil {
				t.Fatal(err)
			}
			if res.Decisions == 0 || res.Errors != 0 || res.Allowed > 15 || res.Denied == 0 {
				t.Fatalf("result %+v: want decisions, no errors, at most 15 allowed over 3 keys with limit 5", res)
			}
			if !(res.P50 <= res.P99 && res.P99 <= res.P999 && res.P999 <= res.Max) || res.PerSecond <= 0 {
				t.Errorf("inconsistent percentiles or rate: %+v", res)
			}
			if !strings.Contains(res.String(), "decisions/s") {
				t.Errorf("String() = %q", res.String())
			}
		})
	}
}

func TestRunCountsErrors(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	defer hs.Close()
	res, err := bench.Run(context.Background(), bench.Config{Targets: []string{hs.URL}, Concurrency: 2, Duration: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors == 0 || res.Decisions != 0 || len(res.ErrorSamples) == 0 || !strings.Contains(res.ErrorSamples[0], "500") {
		t.Fatalf("result %+v: want only errors", res)
	}
}

func TestRunStopsWithContext(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
	}))
	defer hs.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var res bench.Result
	wg.Go(func() {
		res, _ = bench.Run(ctx, bench.Config{Targets: []string{hs.URL}, Concurrency: 2, Duration: time.Hour})
	})
	cancel()
	wg.Wait() // would hang for an hour if the loops ignored ctx
	if res.Errors != 0 {
		t.Errorf("cancellation counted as errors: %+v", res)
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  bench.Config
		want string
	}{
		{"no targets", bench.Config{}, "target"},
		{"not a URL", bench.Config{Targets: []string{"localhost:8080"}}, "http(s)"},
		{"negative concurrency", bench.Config{Targets: []string{"http://a:1"}, Concurrency: -1}, "concurrency"},
		{"negative rate", bench.Config{Targets: []string{"http://a:1"}, Rate: -5}, "rate"},
		{"batch too large", bench.Config{Targets: []string{"http://a:1"}, Batch: bench.MaxBatch + 1}, "batch"},
		{"valid", bench.Config{Targets: []string{"http://a:1"}}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestOpenLoopMeasuresFromTheIntendedSendTime: a node that answers in 50 ms
// with one request in flight cannot keep up with 100 requests/s; an open
// loop still offers them on schedule, so the wait shows in the latency (a
// closed loop would hide it by slowing down).
func TestOpenLoopMeasuresFromTheIntendedSendTime(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond)
		w.WriteHeader(http.StatusOK)
	}))
	defer hs.Close()
	res, err := bench.Run(context.Background(), bench.Config{Targets: []string{hs.URL}, Concurrency: 1, Rate: 100, Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Mode != "open" || res.Rate != 100 || res.Decisions < 10 || res.Decisions > 25 {
		t.Fatalf("result %+v: want about 20 answered requests at one in flight", res)
	}
	// The last answered request was intended about 0.8 s before it was
	// answered.
	if res.Max < 400*time.Millisecond {
		t.Errorf("max latency %s: the schedule's delay is not counted", res.Max)
	}
}

// TestBatchesCountEveryDecision sends batches to a stand-in node and counts
// the decisions in the answers.
func TestBatchesCountEveryDecision(t *testing.T) {
	var paths sync.Map
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths.Store(r.URL.Path, true)
		var b struct {
			Checks []struct{ Key string } `json:"checks"`
		}
		_ = json.NewDecoder(r.Body).Decode(&b)
		var out []string
		for i := range b.Checks {
			out = append(out, fmt.Sprintf(`{"allowed":%v}`, i%4 != 0))
		}
		_, _ = fmt.Fprintf(w, `{"decisions":[%s]}`, strings.Join(out, ","))
	}))
	defer hs.Close()
	res, err := bench.Run(context.Background(), bench.Config{Targets: []string{hs.URL}, Concurrency: 2, Batch: 8, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := paths.Load("/v1/check:batch"); !ok {
		t.Fatal("no request reached /v1/check:batch")
	}
	if res.Decisions == 0 || res.Decisions%8 != 0 || res.Denied*4 != res.Decisions || res.Errors != 0 || res.Batch != 8 {
		t.Fatalf("result %+v: want decisions in eights, a quarter denied", res)
	}
}

// TestCeilingAndNodeCPU measures a real Redis's EVALSHA rate and reads the
// CPU a stand-in node reports.
func TestCeilingAndNodeCPU(t *testing.T) {
	srv := redistest.Start(t)
	var cpu atomic.Int64
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			fmt.Fprintf(w, "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %d\n", cpu.Add(2)) // 2 s a scrape
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer hs.Close()
	res, err := bench.Run(context.Background(), bench.Config{Targets: []string{hs.URL}, Concurrency: 2, Duration: 200 * time.Millisecond,
		Ceiling: srv.URL(), CeilingDuration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.CeilingOpsPerSecond <= 0 || res.RatioToCeiling <= 0 || res.RatioToCeiling != res.PerSecond/res.CeilingOpsPerSecond {
		t.Errorf("ceiling %v, ratio %v", res.CeilingOpsPerSecond, res.RatioToCeiling)
	}
	if res.NodeCPUSeconds != 2 || res.NodeCPUUSPerDecision != 2e6/float64(res.Decisions) {
		t.Errorf("node cpu %v s, %v us per decision over %d decisions", res.NodeCPUSeconds, res.NodeCPUUSPerDecision, res.Decisions)
	}
	if _, err := bench.Ceiling(context.Background(), "http://not-redis", 1, time.Millisecond); err == nil {
		t.Error("a non-Redis URL was accepted")
	}
}
