package ratelimiter

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/operator-dev/operator/internal/redistest"
	"github.com/operator-dev/operator/ratelimiter/api"
)

// TestRedisOutage stops Redis under two nodes, one failing open and one
// failing closed, then starts it again: both recover without a restart.
func TestRedisOutage(t *testing.T) {
	srv := redistest.Start(t)
	cfg := Config{RedisTimeout: 100 * time.Millisecond, DefaultLimit: 1000}
	open := cfg
	open.NodeID, open.OnRedisError = "open", FailOpen
	closed := cfg
	closed.NodeID, closed.OnRedisError = "closed", FailClosed
	on := startNode(t, srv.Addr, open, HandlerOptions{})
	cn := startNode(t, srv.Addr, closed, HandlerOptions{})
	for _, n := range []*testNode{on, cn} {
		eventually(t, 5*time.Second, n.l.NodeID()+" ready", func() bool { return n.do(t, "GET", "/readyz", nil).status == http.StatusOK })
	}

	srv.Stop()

	d, r := on.check(t, "outage", 1)
	if r.status != http.StatusOK || !d.Allowed || !d.Degraded {
		t.Fatalf("fail-open node: %d %s, want 200 allowed and degraded", r.status, r.body)
	}
	if r.header.Get("RateLimit") != "" {
		t.Errorf("degraded decision carries RateLimit %q; it knows nothing about the quota", r.header.Get("RateLimit"))
	}
	_, r = cn.check(t, "outage", 1)
	if r.status != http.StatusServiceUnavailable || r.problem(t).Code != api.CodeRedisUnavailable {
		t.Fatalf("fail-closed node: %d %s, want 503 redis_unavailable", r.status, r.body)
	}
	for _, n := range []*testNode{on, cn} {
		if r := n.do(t, "GET", "/readyz", nil); r.status != http.StatusServiceUnavailable {
			t.Fatalf("%s /readyz during the outage: %d %s, want 503", n.l.NodeID(), r.status, r.body)
		}
		if r := n.do(t, "GET", "/healthz", nil); r.status != http.StatusOK {
			t.Fatalf("%s /healthz during the outage: %d, want 200: the process is up", n.l.NodeID(), r.status)
		}
		if got := gauge(t, n, "ratelimiter_redis_up"); got != 0 {
			t.Errorf("%s ratelimiter_redis_up = %v during the outage, want 0", n.l.NodeID(), got)
		}
	}
	if got := counter(t, on, "ratelimiter_checks_total", "result", "degraded"); got < 1 {
		t.Errorf("degraded checks = %v, want >= 1", got)
	}
	if got := counter(t, cn, "ratelimiter_checks_total", "result", "error"); got < 1 {
		t.Errorf("error checks = %v, want >= 1", got)
	}

	srv.Restart()

	for _, n := range []*testNode{on, cn} {
		eventually(t, 5*time.Second, n.l.NodeID()+" serves normally again", func() bool {
			d, r := n.check(t, "after", 1)
			return r.status == http.StatusOK && !d.Degraded
		})
		eventually(t, 5*time.Second, n.l.NodeID()+" ready again", func() bool { return n.do(t, "GET", "/readyz", nil).status == http.StatusOK })
		eventually(t, 5*time.Second, n.l.NodeID()+" ratelimiter_redis_up back to 1", func() bool { return gauge(t, n, "ratelimiter_redis_up") == 1 })
	}
}

// TestLimitChangeReachesEveryNode checks that a limit stored through one node
// is applied by every node within one second.
func TestLimitChangeReachesEveryNode(t *testing.T) {
	for _, backend := range redistest.Backends() {
		t.Run(backend.Name, func(t *testing.T) {
			// The default sync interval: the one-second promise must hold
			// without test tuning.
			nodes := startCluster(t, backend.Start(t), 3, Config{SyncInterval: DefaultSyncInterval})
			for i, limit := range []int64{7, 9, 11} {
				r := nodes[i%3].do(t, "PUT", "/api/v1/limits/prop:*", api.LimitSpec{Limit: limit, WindowMS: 1000, Algorithm: "gcra"})
				if r.status != http.StatusOK {
					t.Fatalf("PUT: %d %s", r.status, r.body)
				}
				for _, n := range nodes {
					eventually(t, time.Second, fmt.Sprintf("%s applies limit %d", n.l.NodeID(), limit), func() bool {
						d, _ := n.check(t, fmt.Sprintf("prop:%d", limit), 1)
						return d.Limit == limit
					})
				}
			}
		})
	}
}

// TestAuth checks that mutating management endpoints need the token and
// nothing else does.
func TestAuth(t *testing.T) {
	addr := redistest.StartMini(t).Addr()
	n := startNode(t, addr, Config{NodeID: "n1", EnableChaos: true}, HandlerOptions{Token: "s3cret"})
	eventually(t, 2*time.Second, "registered", func() bool { return n.do(t, "GET", "/api/v1/nodes", nil).status == http.StatusOK })
	mutating := []struct{ method, path, body string }{
		{"PUT", "/api/v1/limits/a*", `{"limit":1,"window_ms":1000,"algorithm":"gcra"}`},
		{"DELETE", "/api/v1/limits/a*", ""},
		{"PUT", "/api/v1/blocks/a", `{"ttl_ms":1000,"reason":"x"}`},
		{"DELETE", "/api/v1/blocks/a", ""},
		{"POST", "/api/v1/counters/a/reset", ""},
		{"POST", "/api/v1/nodes/n1/drain", ""},
		{"POST", "/api/v1/nodes/n1/undrain", ""},
		{"POST", "/api/v1/chaos", `{"clock_skew_ms":0,"redis_delay_ms":0}`},
		{"DELETE", "/api/v1/chaos", ""},
	}
	for _, m := range mutating {
		t.Run(m.method+" "+m.path, func(t *testing.T) {
			for _, hdr := range [][]string{nil, {"Authorization", "Bearer wrong"}, {"Authorization", "s3cret"}, {"Authorization", "Basic s3cret"}} {
				r := n.do(t, m.method, m.path, m.body, hdr...)
				if r.status != http.StatusUnauthorized || r.problem(t).Code != api.CodeUnauthorized {
					t.Fatalf("with %v: %d %s, want 401", hdr, r.status, r.body)
				}
				if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
				}
			}
			r := n.do(t, m.method, m.path, m.body, "Authorization", "Bearer s3cret")
			if r.status == http.StatusUnauthorized {
				t.Fatalf("with the token: 401 %s", r.body)
			}
		})
	}
	for _, path := range []string{"/api/v1/nodes", "/api/v1/limits", "/api/v1/blocks", "/api/v1/counters", "/api/v1/hotkeys", "/api/v1/status", "/healthz", "/metrics"} {
		if r := n.do(t, "GET", path, nil); r.status != http.StatusOK {
			t.Errorf("GET %s without a token: %d %s, want 200", path, r.status, r.body)
		}
	}
	if _, r := n.check(t, "k", 1); r.status != http.StatusOK {
		t.Errorf("check without a token: %d, want 200", r.status)
	}
}

// TestHeaders checks the draft-10 RateLimit fields and Retry-After on 200 and
// 429, for every algorithm, on a frozen node clock.
func TestHeaders(t *testing.T) {
	addr := redistest.StartMini(t).Addr()
	clock := newTestClock()
	n := startNode(t, addr, Config{NodeID: "n1", Clock: ClockNode, Now: clock.Now, DefaultLimit: 2, DefaultWindow: time.Minute}, HandlerOptions{})
	// What each algorithm reports after the first, second and third check
	// at the same instant: t on 200 is the time to a full reset, t on 429
	// equals Retry-After.
	want := map[Algorithm][3]string{
		SlidingWindowLog:     {`"default";r=1;t=60`, `"default";r=0;t=60`, `"default";r=0;t=60`},
		SlidingWindowCounter: {`"default";r=1;t=120`, `"default";r=0;t=120`, `"default";r=0;t=90`},
		FixedWindow:          {`"default";r=1;t=60`, `"default";r=0;t=60`, `"default";r=0;t=60`},
		GCRA:                 {`"default";r=1;t=30`, `"default";r=0;t=60`, `"default";r=0;t=30`},
	}
	for _, alg := range Algorithms() {
		t.Run(string(alg), func(t *testing.T) {
			if _, err := n.l.PutLimit(context.Background(), "hdr:"+string(alg), Limit{Limit: 2, Window: time.Minute, Algorithm: alg}); err != nil {
				t.Fatal(err)
			}
			for i, wantStatus := range []int{200, 200, 429} {
				d, r := n.check(t, "hdr:"+string(alg), 1)
				if r.status != wantStatus {
					t.Fatalf("check %d: %d %s, want %d", i, r.status, r.body, wantStatus)
				}
				if got := r.header.Get("RateLimit-Policy"); got != `"default";q=2;w=60` {
					t.Errorf("check %d: RateLimit-Policy = %q", i, got)
				}
				if got := r.header.Get("RateLimit"); got != want[alg][i] {
					t.Errorf("check %d: RateLimit = %q, want %q", i, got, want[alg][i])
				}
				if ct := r.header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("check %d: Content-Type = %q", i, ct)
				}
				ra := r.header.Get("Retry-After")
				if wantStatus == 200 {
					if ra != "" || d.RetryAfterMS != 0 || !d.Allowed {
						t.Errorf("check %d: allowed with Retry-After %q, retry_after_ms %d", i, ra, d.RetryAfterMS)
					}
					continue
				}
				tParam := strings.TrimPrefix(want[alg][i], `"default";r=0;t=`)
				if ra != tParam || d.Allowed || d.RetryAfterMS <= 0 || d.Remaining != 0 {
					t.Errorf("check %d: Retry-After %q (want %s), decision %+v", i, ra, tParam, d)
				}
				if d.Key != "hdr:"+string(alg) || d.Limit != 2 || d.WindowMS != 60000 || d.Algorithm != string(alg) || d.Node != "n1" {
					t.Errorf("check %d: decision body %+v", i, d)
				}
			}
		})
	}
}

// TestBadInput checks that bad requests get 400 problem documents with a
// detail that says what is wrong.
func TestBadInput(t *testing.T) {
	addr := redistest.StartMini(t).Addr()
	n := startNode(t, addr, Config{NodeID: "n1", DefaultLimit: 10}, HandlerOptions{})
	long := strings.Repeat("k", 257)
	cases := []struct {
		name, method, path, body, wantDetail string
	}{
		{"malformed JSON", "POST", "/v1/check", `{"key":`, "malformed JSON"},
		{"not JSON", "POST", "/v1/check", `key=a`, "must be a JSON object"},
		{"array body", "POST", "/v1/check", `[{"key":"a"}]`, "must be a JSON object"},
		{"empty body", "POST", "/v1/check", ``, "empty"},
		{"trailing data", "POST", "/v1/check", `{"key":"a"} {"key":"b"}`, "single JSON object"},
		{"unknown field", "POST", "/v1/check", `{"key":"a","limit":5}`, `unknown field "limit"`},
		{"missing key", "POST", "/v1/check", `{"cost":1}`, `"key" is required`},
		{"empty key", "POST", "/v1/check", `{"key":""}`, "key must not be empty"},
		{"key not a string", "POST", "/v1/check", `{"key":42}`, `"key" must be a string`},
		{"oversized key", "POST", "/v1/check", `{"key":"` + long + `"}`, "longer than the maximum of 256"},
		{"control character in key", "POST", "/v1/check", `{"key":"a\u0000b"}`, "control characters"},
		{"brace in key", "POST", "/v1/check", `{"key":"a{b}"}`, "'{' or '}'"},
		{"zero cost", "POST", "/v1/check", `{"key":"a","cost":0}`, "at least 1"},
		{"negative cost", "POST", "/v1/check", `{"key":"a","cost":-3}`, "at least 1"},
		{"fractional cost", "POST", "/v1/check", `{"key":"a","cost":1.5}`, "positive integer"},
		{"string cost", "POST", "/v1/check", `{"key":"a","cost":"1"}`, "positive integer"},
		{"cost above the limit", "POST", "/v1/check", `{"key":"a","cost":11}`, "exceeds the limit 10"},
		{"body over 64 KiB", "POST", "/v1/check", `{"key":"a","pad":"` + strings.Repeat("x", 70000) + `"}`, "exceeds 65536 bytes"},
		{"unknown algorithm", "PUT", "/api/v1/limits/a", `{"limit":1,"window_ms":1000,"algorithm":"leaky_bucket"}`, `unknown algorithm "leaky_bucket"`},
		{"zero window", "PUT", "/api/v1/limits/a", `{"limit":1,"window_ms":0,"algorithm":"gcra"}`, "window_ms 0 must be positive"},
		{"negative window", "PUT", "/api/v1/limits/a", `{"limit":1,"window_ms":-5,"algorithm":"gcra"}`, "window_ms -5 must be positive"},
		{"zero limit", "PUT", "/api/v1/limits/a", `{"limit":0,"window_ms":1000,"algorithm":"gcra"}`, "limit 0 must be between 1"},
		{"log limit too large", "PUT", "/api/v1/limits/a", `{"limit":20000,"window_ms":1000,"algorithm":"sliding_window_log"}`, "supports limits up to 10000"},
		{"star inside a pattern", "PUT", "/api/v1/limits/a*b", `{"limit":1,"window_ms":1000,"algorithm":"gcra"}`, "only as its last character"},
		{"unknown limit field", "PUT", "/api/v1/limits/a", `{"limit":1,"window_ms":1000,"algorithm":"gcra","burst":3}`, `unknown field "burst"`},
		{"zero block ttl", "PUT", "/api/v1/blocks/a", `{"ttl_ms":0,"reason":"x"}`, "ttl_ms 0 must be positive"},
		{"oversized key in a path", "GET", "/api/v1/counters/" + long, ``, "longer than the maximum"},
		{"bad list limit", "GET", "/api/v1/counters?limit=0", ``, "between 1 and 1000"},
		{"bad hotkeys limit", "GET", "/api/v1/hotkeys?limit=x", ``, "between 1 and 1000"},
		{"bad chaos", "POST", "/api/v1/chaos", `{"clock_skew_ms":1}`, "disabled"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := n.do(t, tc.method, tc.path, tc.body)
			wantStatus := http.StatusBadRequest
			if tc.name == "bad chaos" {
				wantStatus = http.StatusNotFound
			}
			if r.status != wantStatus {
				t.Fatalf("%d %s, want %d", r.status, r.body, wantStatus)
			}
			if p := r.problem(t); !strings.Contains(p.Detail, tc.wantDetail) {
				t.Errorf("detail %q does not mention %q", p.Detail, tc.wantDetail)
			}
		})
	}
}

// TestUnroutedRequests checks that unknown paths and methods get problem
// documents too.
func TestUnroutedRequests(t *testing.T) {
	n := startNode(t, redistest.StartMini(t).Addr(), Config{NodeID: "n1"}, HandlerOptions{})
	if r := n.do(t, "GET", "/nope", nil); r.status != http.StatusNotFound || r.problem(t).Code != api.CodeNotFound {
		t.Errorf("GET /nope: %d %s", r.status, r.body)
	}
	r := n.do(t, "GET", "/v1/check", nil)
	if r.status != http.StatusMethodNotAllowed || !strings.Contains(r.header.Get("Allow"), "POST") {
		t.Errorf("GET /v1/check: %d %v %s", r.status, r.header, r.body)
	}
	r.problem(t)
}

// TestCheckDurationObserved proves the check latency histogram moves when the
// real handler serves checks, and that checks are counted by result.
func TestCheckDurationObserved(t *testing.T) {
	n := startNode(t, redistest.StartMini(t).Addr(), Config{NodeID: "n1", DefaultLimit: 1, DefaultAlgorithm: FixedWindow}, HandlerOptions{})
	before := histogramCount(t, n, "ratelimiter_check_duration_seconds")
	n.check(t, "m", 1)
	n.check(t, "m", 1)
	n.do(t, "POST", "/v1/check", `{"key":""}`) // a 400 is still a served check
	if got := histogramCount(t, n, "ratelimiter_check_duration_seconds") - before; got != 3 {
		t.Errorf("check duration observations = %d, want 3", got)
	}
	if got := counter(t, n, "ratelimiter_checks_total", "result", "allowed", "algorithm", "fixed_window"); got != 1 {
		t.Errorf("allowed = %v, want 1", got)
	}
	if got := counter(t, n, "ratelimiter_checks_total", "result", "denied", "algorithm", "fixed_window"); got != 1 {
		t.Errorf("denied = %v, want 1", got)
	}
	if histogramCount(t, n, "ratelimiter_redis_duration_seconds") == 0 {
		t.Error("redis duration never observed")
	}
	r := n.do(t, "GET", "/metrics", nil)
	for _, want := range []string{`ratelimiter_checks_total{algorithm="fixed_window",node="n1",result="allowed"} 1`, "ratelimiter_build_info{", "ratelimiter_draining{node=\"n1\"} 0", "ratelimiter_redis_up{node=\"n1\"} 1"} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func findMetric(t *testing.T, n *testNode, name string, labels ...string) []*dto.Metric {
	t.Helper()
	mfs, err := n.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []*dto.Metric
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metrics
				}
			}
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no metric %s%v", name, labels)
	}
	return out
}

func counter(t *testing.T, n *testNode, name string, labels ...string) float64 {
	var sum float64
	for _, m := range findMetric(t, n, name, labels...) {
		sum += m.GetCounter().GetValue()
	}
	return sum
}

func gauge(t *testing.T, n *testNode, name string) float64 {
	return findMetric(t, n, name)[0].GetGauge().GetValue()
}

func histogramCount(t *testing.T, n *testNode, name string) uint64 {
	var sum uint64
	for _, m := range findMetric(t, n, name) {
		sum += m.GetHistogram().GetSampleCount()
	}
	return sum
}

// TestBlocks checks blocking through one node and enforcement on another.
func TestBlocks(t *testing.T) {
	nodes := startCluster(t, redistest.Start(t).Addr, 2, Config{DefaultLimit: 100})
	a, b := nodes[0], nodes[1]
	r := a.do(t, "PUT", "/api/v1/blocks/bad%2Factor", api.BlockSpec{TTLMS: 60000, Reason: "abuse"})
	if r.status != http.StatusOK {
		t.Fatalf("PUT block: %d %s", r.status, r.body)
	}
	d, r := b.check(t, "bad/actor", 1)
	if r.status != http.StatusTooManyRequests || !d.Blocked || d.Allowed || d.RetryAfterMS <= 0 || d.RetryAfterMS > 60000 {
		t.Fatalf("blocked check on the other node: %d %s", r.status, r.body)
	}
	if ra := r.header.Get("Retry-After"); ra != "60" {
		t.Errorf("Retry-After = %q, want 60", ra)
	}
	var list api.BlockList
	b.do(t, "GET", "/api/v1/blocks", nil).decode(t, &list)
	if list.Count != 1 || list.Blocks[0].Key != "bad/actor" || list.Blocks[0].Reason != "abuse" || list.Blocks[0].TTLMS <= 0 || list.Blocks[0].ExpiresAt.Before(list.Blocks[0].CreatedAt) {
		t.Fatalf("blocks = %+v", list)
	}
	if r := b.do(t, "GET", "/api/v1/blocks/bad%2Factor", nil); r.status != http.StatusOK {
		t.Fatalf("GET block: %d %s", r.status, r.body)
	}
	var c api.Counter
	b.do(t, "GET", "/api/v1/counters/bad%2Factor", nil).decode(t, &c)
	if !c.Blocked {
		t.Errorf("counter of a blocked key: %+v", c)
	}
	if r := a.do(t, "DELETE", "/api/v1/blocks/bad%2Factor", nil); r.status != http.StatusOK {
		t.Fatalf("DELETE block: %d %s", r.status, r.body)
	}
	if d, r := b.check(t, "bad/actor", 1); r.status != http.StatusOK || d.Blocked {
		t.Fatalf("after unblock: %d %s", r.status, r.body)
	}
	if r := a.do(t, "DELETE", "/api/v1/blocks/bad%2Factor", nil); r.status != http.StatusNotFound {
		t.Fatalf("second DELETE: %d, want 404", r.status)
	}
	if r := a.do(t, "GET", "/api/v1/blocks/bad%2Factor", nil); r.status != http.StatusNotFound {
		t.Fatalf("GET a removed block: %d, want 404", r.status)
	}
}

// TestDrain drains a node through another one.
func TestDrain(t *testing.T) {
	nodes := startCluster(t, redistest.Start(t).Addr, 2, Config{})
	a, b := nodes[0], nodes[1]
	nodeState := func(id string) string {
		var list api.NodeList
		a.do(t, "GET", "/api/v1/nodes", nil).decode(t, &list)
		for _, n := range list.Nodes {
			if n.ID == id {
				return n.State
			}
		}
		return "missing"
	}
	eventually(t, 2*time.Second, "n2 registered", func() bool { return nodeState("n2") == api.NodeUp })
	if r := a.do(t, "POST", "/api/v1/nodes/n2/drain", nil); r.status != http.StatusOK {
		t.Fatalf("drain: %d %s", r.status, r.body)
	}
	eventually(t, time.Second, "n2 refuses checks", func() bool {
		_, r := b.check(t, "d", 1)
		return r.status == http.StatusServiceUnavailable
	})
	_, r := b.check(t, "d", 1)
	if r.problem(t).Code != api.CodeDraining {
		t.Errorf("draining check: %s", r.body)
	}
	if r := b.do(t, "GET", "/readyz", nil); r.status != http.StatusServiceUnavailable {
		t.Errorf("draining /readyz: %d", r.status)
	}
	if got := nodeState("n2"); got != api.NodeDraining {
		t.Errorf("n2 listed %q, want draining", got)
	}
	if got := gauge(t, b, "ratelimiter_draining"); got != 1 {
		t.Errorf("ratelimiter_draining = %v", got)
	}
	if _, r := a.check(t, "d", 1); r.status != http.StatusOK {
		t.Errorf("the other node: %d", r.status)
	}
	if r := a.do(t, "POST", "/api/v1/nodes/n2/undrain", nil); r.status != http.StatusOK {
		t.Fatalf("undrain: %d %s", r.status, r.body)
	}
	eventually(t, time.Second, "n2 serves again", func() bool {
		_, r := b.check(t, "d", 1)
		return r.status == http.StatusOK
	})
	if r := a.do(t, "POST", "/api/v1/nodes/nope/drain", nil); r.status != http.StatusNotFound {
		t.Errorf("drain of an unknown node: %d, want 404", r.status)
	}
}

// TestCounters checks the counter endpoints, including that listing skips
// every non-counter key and bounds its work.
func TestCounters(t *testing.T) {
	n := startNode(t, redistest.Start(t).Addr, Config{NodeID: "n1", DefaultLimit: 5}, HandlerOptions{})
	ctx := context.Background()
	for _, alg := range Algorithms() {
		if _, err := n.l.PutLimit(ctx, "c:"+string(alg)+":*", Limit{Limit: 5, Window: time.Minute, Algorithm: alg}); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if _, err := n.l.Check(ctx, fmt.Sprintf("c:%s:%d", alg, i), 2); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := n.l.Block(ctx, "c:blocked", time.Minute, ""); err != nil {
		t.Fatal(err)
	}
	// Foreign keys in the namespace must not break the listing.
	n.rdb.Set(ctx, "ratelimit:{c:foreign}:other", "x", time.Minute)
	n.rdb.Set(ctx, "ratelimit:unrelated", "x", time.Minute)

	var list api.CounterList
	r := n.do(t, "GET", "/api/v1/counters?prefix=c:", nil)
	if r.status != http.StatusOK {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	r.decode(t, &list)
	if list.Count != 12 || len(list.Counters) != 12 || list.Truncated {
		t.Fatalf("list = %d counters (truncated %v), want 12: %s", list.Count, list.Truncated, r.body)
	}
	for _, c := range list.Counters {
		if c.Count != 2 || c.Remaining != 3 || c.Limit != 5 || c.TTLMS <= 0 || !strings.HasPrefix(c.Key, "c:"+c.Algorithm+":") {
			t.Errorf("counter %+v", c)
		}
	}

	r = n.do(t, "GET", "/api/v1/counters?prefix=c:gcra:&limit=2", nil)
	r.decode(t, &list)
	if list.Count != 2 {
		t.Errorf("limit=2 returned %d", list.Count)
	}

	var c api.Counter
	n.do(t, "GET", "/api/v1/counters/c:fixed_window:0", nil).decode(t, &c)
	if c.Count != 2 || c.Remaining != 3 || c.Algorithm != "fixed_window" || c.Pattern != "c:fixed_window:*" || c.TTLMS <= 0 {
		t.Errorf("counter = %+v", c)
	}
	var reset api.CounterReset
	n.do(t, "POST", "/api/v1/counters/c:fixed_window:0/reset", nil).decode(t, &reset)
	if reset.Deleted != 1 {
		t.Errorf("reset deleted %d keys, want 1", reset.Deleted)
	}
	n.do(t, "GET", "/api/v1/counters/c:fixed_window:0", nil).decode(t, &c)
	if c.Count != 0 || c.TTLMS != -2 {
		t.Errorf("after reset: %+v", c)
	}
}

// TestCounterListIsBounded fills Redis with more keys than one listing may
// examine and checks that the listing stops and offers a cursor.
func TestCounterListIsBounded(t *testing.T) {
	n := startNode(t, redistest.Start(t).Addr, Config{NodeID: "n1"}, HandlerOptions{})
	ctx := context.Background()
	pipe := n.rdb.Pipeline()
	for i := range counterScanCount * (counterScanCalls + 5) {
		pipe.Set(ctx, fmt.Sprintf("ratelimit:{noise:%d}:block", i), "x", time.Minute)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	var list api.CounterList
	r := n.do(t, "GET", "/api/v1/counters", nil)
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	r.decode(t, &list)
	if list.Count != 0 || !list.Truncated || list.Cursor == "" {
		t.Fatalf("list over %d non-counter keys: %+v; want empty, truncated, with a cursor", counterScanCount*(counterScanCalls+5), list)
	}
	// Following the cursor finishes the scan.
	for i := 0; list.Truncated; i++ {
		if i > 10 {
			t.Fatal("the cursor never finished the scan")
		}
		n.do(t, "GET", "/api/v1/counters?cursor="+list.Cursor, nil).decode(t, &list)
	}
}

// TestHotKeys checks the hot key report and its bucket alignment.
func TestHotKeys(t *testing.T) {
	clock := newTestClock()
	n := startNode(t, redistest.StartMini(t).Addr(), Config{NodeID: "n1", Clock: ClockNode, Now: clock.Now, DefaultLimit: 3}, HandlerOptions{})
	for range 5 {
		n.check(t, "hot", 1)
	}
	n.check(t, "warm", 1)
	clock.Advance(1500 * time.Millisecond)
	n.check(t, "hot", 1)
	var hk api.HotKeys
	n.do(t, "GET", "/api/v1/hotkeys?limit=1", nil).decode(t, &hk)
	if hk.Node != "n1" || hk.BucketMS != 1000 || hk.WindowMS != 60000 || len(hk.Keys) != 1 {
		t.Fatalf("hotkeys = %+v", hk)
	}
	k := hk.Keys[0]
	if k.Key != "hot" || k.Checks != 6 || k.Allowed != 3 || k.Denied != 3 || len(k.Buckets) != 2 {
		t.Fatalf("hot = %+v", k)
	}
	start := clock.Now().Add(-1500 * time.Millisecond).UnixMilli()
	if k.Buckets[0].StartMS != start-start%1000 || k.Buckets[1].StartMS != k.Buckets[0].StartMS+1000 {
		t.Errorf("buckets %+v are not aligned to seconds from %d", k.Buckets, start)
	}
	if k.Buckets[0].Checks != 5 || k.Buckets[1].Checks != 1 || k.Buckets[1].Denied != 1 {
		t.Errorf("buckets %+v", k.Buckets)
	}
	for _, b := range k.Buckets {
		if b.StartMS < hk.FromMS || b.StartMS >= hk.ToMS {
			t.Errorf("bucket %d outside [%d, %d)", b.StartMS, hk.FromMS, hk.ToMS)
		}
	}
	clock.Advance(2 * time.Minute)
	n.do(t, "GET", "/api/v1/hotkeys", nil).decode(t, &hk)
	if len(hk.Keys) != 0 {
		t.Errorf("keys older than a minute reported: %+v", hk.Keys)
	}
}

// TestHotKeysCap checks that the per-bucket key cap holds and the rest is
// counted as untracked.
func TestHotKeysCap(t *testing.T) {
	h := newHotKeys(2)
	now := time.Unix(1000, 0)
	for _, k := range []string{"a", "b", "c", "a", "d"} {
		h.record(k, true, now)
	}
	s := h.snapshot(now, 10)
	if len(s.Keys) != 2 || s.Untracked != 2 || s.Keys[0].Key != "a" || s.Keys[0].Checks != 2 {
		t.Errorf("snapshot = %+v", s)
	}
}

// TestChaos checks the chaos hooks: off by default, a Redis delay beyond the
// timeout makes checks fail, and clearing restores service.
func TestChaos(t *testing.T) {
	addr := redistest.StartMini(t).Addr()
	off := startNode(t, addr, Config{NodeID: "off"}, HandlerOptions{})
	if r := off.do(t, "POST", "/api/v1/chaos", api.Chaos{RedisDelayMS: 10}); r.status != http.StatusNotFound || r.problem(t).Code != api.CodeChaosDisabled {
		t.Fatalf("chaos on a node without --enable-chaos: %d %s", r.status, r.body)
	}
	clock := newTestClock()
	n := startNode(t, addr, Config{NodeID: "on", EnableChaos: true, RedisTimeout: 100 * time.Millisecond, Clock: ClockNode, Now: clock.Now}, HandlerOptions{})
	var c api.Chaos
	r := n.do(t, "POST", "/api/v1/chaos", api.Chaos{RedisDelayMS: 300, ClockSkewMS: -5000})
	if r.status != http.StatusOK {
		t.Fatalf("set chaos: %d %s", r.status, r.body)
	}
	r.decode(t, &c)
	if c.RedisDelayMS != 300 || c.ClockSkewMS != -5000 {
		t.Fatalf("chaos = %+v", c)
	}
	if _, r := n.check(t, "slow", 1); r.status != http.StatusServiceUnavailable {
		t.Fatalf("check with a 300 ms Redis delay and a 100 ms timeout: %d %s", r.status, r.body)
	}
	if err := n.l.SetChaos(Chaos{ClockSkew: 90 * time.Second}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "clock offset reports the skew", func() bool {
		var s api.Status
		n.do(t, "GET", "/api/v1/status", nil).decode(t, &s)
		// The test clock is frozen in 2026-03; miniredis runs on the wall
		// clock, so compare against what the node should see.
		want := clock.Now().Add(90 * time.Second).Sub(time.Now())
		got := time.Duration(s.ClockOffsetMS * float64(time.Millisecond))
		metric := time.Duration(gauge(t, n, "ratelimiter_clock_offset_seconds") * float64(time.Second))
		return (got-want).Abs() < 5*time.Second && (metric-want).Abs() < 5*time.Second
	})
	n.do(t, "POST", "/api/v1/chaos", api.Chaos{ClockSkewMS: -5000})
	if err := n.l.SetChaos(Chaos{ClockSkew: -5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	var hk api.HotKeys
	n.check(t, "skewed", 1)
	n.do(t, "GET", "/api/v1/hotkeys", nil).decode(t, &hk)
	for _, k := range hk.Keys {
		if k.Key == "skewed" && k.Buckets[0].StartMS != clock.Now().Add(-5*time.Second).UnixMilli()/1000*1000 {
			t.Errorf("skewed decision bucket %d, want the skewed node clock", k.Buckets[0].StartMS)
		}
	}
	if r := n.do(t, "DELETE", "/api/v1/chaos", nil); r.status != http.StatusOK {
		t.Fatalf("clear chaos: %d", r.status)
	}
	// A 100 ms timeout can still be missed on a loaded machine; retry.
	eventually(t, 5*time.Second, "checks succeed after clearing chaos", func() bool {
		_, r := n.check(t, "slow", 1)
		return r.status == http.StatusOK
	})
}

// TestConfigValidate checks that every bad setting is reported.
func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string // "" for valid
	}{
		{"zero value with a node id", Config{NodeID: "n1"}, ""},
		{"missing node id", Config{}, "node id"},
		{"bad node id", Config{NodeID: "a b"}, "node id"},
		{"bad algorithm", Config{NodeID: "n", DefaultAlgorithm: "x"}, "unknown algorithm"},
		{"bad failure mode", Config{NodeID: "n", OnRedisError: "maybe"}, "on_redis_error"},
		{"bad clock", Config{NodeID: "n", Clock: "sun"}, "clock"},
		{"slow sync", Config{NodeID: "n", SyncInterval: 2 * time.Second, NodeDownAfter: 5 * time.Second}, "sync interval"},
		{"down before a sync", Config{NodeID: "n", NodeDownAfter: 100 * time.Millisecond}, "node down after"},
		{"negative limit", Config{NodeID: "n", DefaultLimit: -1}, "limit -1"},
		{"sub-millisecond window", Config{NodeID: "n", DefaultWindow: 1500 * time.Microsecond}, "whole number of milliseconds"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

// TestCounterUsesTheEnforcedWindow guards against reading or pruning a
// counter with a window other than the one enforced: with a 10 minute limit,
// units used 2 minutes ago still count, in checks and in the counter view.
func TestCounterUsesTheEnforcedWindow(t *testing.T) {
	for _, alg := range Algorithms() {
		t.Run(string(alg), func(t *testing.T) {
			clock := newTestClock()
			n := startNode(t, redistest.StartMini(t).Addr(), Config{NodeID: "n1", Clock: ClockNode, Now: clock.Now, DefaultLimit: 5, DefaultWindow: time.Minute}, HandlerOptions{})
			if r := n.do(t, "PUT", "/api/v1/limits/long:*", api.LimitSpec{Limit: 5, WindowMS: 600000, Algorithm: string(alg)}); r.status != http.StatusOK {
				t.Fatalf("PUT: %d %s", r.status, r.body)
			}
			n.check(t, "long:1", 1)
			n.check(t, "long:1", 4)
			clock.Advance(2 * time.Minute)
			var c api.Counter
			n.do(t, "GET", "/api/v1/counters/long:1", nil).decode(t, &c)
			if c.WindowMS != 600000 || c.Remaining > 1 {
				t.Errorf("counter two minutes later = %+v; the 10 minute window still holds the units", c)
			}
			if d, _ := n.check(t, "long:1", 2); d.Allowed {
				t.Errorf("check two minutes later allowed %+v; the default 1 minute window must not apply", d)
			}
		})
	}
}

// TestLimitChangeWithoutRun checks that a library user who never calls Run
// still picks up limit changes made through another node.
func TestLimitChangeWithoutRun(t *testing.T) {
	addr := redistest.StartMini(t).Addr()
	writer := newLimiter(t, addr, Config{NodeID: "w"})
	reader := newLimiter(t, addr, Config{NodeID: "r", SyncInterval: 50 * time.Millisecond})
	ctx := context.Background()
	if d, err := reader.Check(ctx, "lib:1", 1); err != nil || d.Limit.Limit != DefaultLimit {
		t.Fatalf("first check: %+v, %v", d, err)
	}
	if _, err := writer.PutLimit(ctx, "lib:*", Limit{Limit: 3, Window: time.Second, Algorithm: GCRA}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "reader applies the limit", func() bool {
		d, err := reader.Check(ctx, "lib:2", 1)
		return err == nil && d.Limit.Limit == 3
	})
}

// TestBlockEndsOnTime checks that a block lifts when its TTL has passed, on
// both backends, including miniredis whose TTLs only run down when told to.
func TestBlockEndsOnTime(t *testing.T) {
	for _, backend := range redistest.Backends() {
		t.Run(backend.Name, func(t *testing.T) {
			n := startNode(t, backend.Start(t), Config{NodeID: "n1"}, HandlerOptions{})
			b, err := n.l.Block(context.Background(), "brief", 100*time.Millisecond, "short")
			if err != nil {
				t.Fatal(err)
			}
			if d, _ := n.check(t, "brief", 1); !d.Blocked || d.RetryAfterMS <= 0 || d.RetryAfterMS > 100 {
				t.Fatalf("check during the block: %+v", d)
			}
			var list api.BlockList
			n.do(t, "GET", "/api/v1/blocks", nil).decode(t, &list)
			if list.Count != 1 || list.Blocks[0].TTLMS > 100 || !list.Blocks[0].ExpiresAt.Equal(b.ExpiresAt) {
				t.Fatalf("blocks during the block: %+v (put %+v)", list, b)
			}
			eventually(t, 2*time.Second, "block lifted", func() bool {
				d, _ := n.check(t, "brief", 1)
				return d.Allowed && !d.Blocked
			})
			n.do(t, "GET", "/api/v1/blocks", nil).decode(t, &list)
			if list.Count != 0 {
				t.Fatalf("blocks after the block: %+v", list)
			}
		})
	}
}
