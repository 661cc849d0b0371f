package bench_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
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
