package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/operator-dev/operator/internal/redistest"
	"github.com/operator-dev/operator/ratelimiter"
	"github.com/operator-dev/operator/ratelimiter/api"
	"github.com/operator-dev/operator/ratelimiter/client"
)

// startServer runs a real node on a real redis-server and returns a client
// for it with the node's token.
func startServer(t *testing.T) *client.Client {
	t.Helper()
	srv := redistest.Start(t)
	l, err := ratelimiter.New(redistest.Client(t, srv.Addr), ratelimiter.Config{
		NodeID: "c1", EnableChaos: true, DefaultLimit: 2, DefaultAlgorithm: ratelimiter.FixedWindow,
		SyncInterval: 50 * time.Millisecond, RedisTimeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	hs := httptest.NewServer(ratelimiter.NewHandler(l, ratelimiter.HandlerOptions{Token: "tok"}))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = l.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait(); hs.Close() })
	c, err := client.New(hs.URL, hs.Client())
	if err != nil {
		t.Fatal(err)
	}
	return c.WithToken("tok")
}

func TestClientAgainstNode(t *testing.T) {
	c := startServer(t)
	ctx := context.Background()

	d, err := c.Check(ctx, "k/1", 1)
	if err != nil || !d.Allowed || d.Remaining != 1 || d.Limit != 2 {
		t.Fatalf("Check = %+v, %v", d, err)
	}
	c.Check(ctx, "k/1", 1)
	d, err = c.Check(ctx, "k/1", 1)
	if err != nil || d.Allowed || d.RetryAfterMS <= 0 {
		t.Fatalf("denied Check = %+v, %v; want a denied decision and no error", d, err)
	}
	if _, err := c.Check(ctx, "", 1); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("empty key: %v, want ErrBadRequest", err)
	}

	lim, err := c.PutLimit(ctx, "k/*", api.LimitSpec{Limit: 5, WindowMS: 1000, Algorithm: "gcra"})
	if err != nil || lim.Pattern != "k/*" || lim.Limit != 5 {
		t.Fatalf("PutLimit = %+v, %v", lim, err)
	}
	if got, err := c.Limit(ctx, "k/*"); err != nil || got.Limit != 5 {
		t.Fatalf("Limit = %+v, %v", got, err)
	}
	list, err := c.Limits(ctx)
	if err != nil || list.Count != 1 || list.Version < 1 || list.Default.Limit != 2 {
		t.Fatalf("Limits = %+v, %v", list, err)
	}
	if d, _ := c.Check(ctx, "k/2", 1); d.Limit != 5 {
		t.Fatalf("check after PutLimit: %+v", d)
	}
	ct, err := c.Counter(ctx, "k/2")
	if err != nil || ct.Count != 1 || ct.Algorithm != "gcra" {
		t.Fatalf("Counter = %+v, %v", ct, err)
	}
	cl, err := c.Counters(ctx, client.CounterQuery{Prefix: "k/", Limit: 10})
	if err != nil || cl.Count != 1 { // k/1 is fixed_window, now configured as gcra: skipped
		t.Fatalf("Counters = %+v, %v", cl, err)
	}
	if r, err := c.ResetCounter(ctx, "k/2"); err != nil || r.Deleted != 1 {
		t.Fatalf("ResetCounter = %+v, %v", r, err)
	}
	if _, err := c.DeleteLimit(ctx, "k/*"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteLimit(ctx, "k/*"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("second DeleteLimit: %v, want ErrNotFound", err)
	}

	b, err := c.PutBlock(ctx, "evil", api.BlockSpec{TTLMS: 5000, Reason: "test"})
	if err != nil || b.Key != "evil" || b.TTLMS != 5000 {
		t.Fatalf("PutBlock = %+v, %v", b, err)
	}
	if d, err := c.Check(ctx, "evil", 1); err != nil || !d.Blocked {
		t.Fatalf("blocked Check = %+v, %v", d, err)
	}
	if bl, err := c.Blocks(ctx); err != nil || bl.Count != 1 {
		t.Fatalf("Blocks = %+v, %v", bl, err)
	}
	if b, err := c.Block(ctx, "evil"); err != nil || b.Reason != "test" {
		t.Fatalf("Block = %+v, %v", b, err)
	}
	if _, err := c.DeleteBlock(ctx, "evil"); err != nil {
		t.Fatal(err)
	}

	var nodes api.NodeList
	deadline := time.Now().Add(2 * time.Second)
	for nodes.Count == 0 && time.Now().Before(deadline) {
		nodes, err = c.Nodes(ctx)
	}
	if err != nil || nodes.Count != 1 || nodes.Nodes[0].ID != "c1" || nodes.Nodes[0].State != api.NodeUp {
		t.Fatalf("Nodes = %+v, %v", nodes, err)
	}
	if a, err := c.Drain(ctx, "c1"); err != nil || !a.Draining {
		t.Fatalf("Drain = %+v, %v", a, err)
	}
	if err := c.Readyz(ctx); !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("Readyz while draining: %v, want ErrUnavailable", err)
	}
	_, err = c.Check(ctx, "x", 1)
	var e *client.Error
	if !errors.As(err, &e) || e.StatusCode != 503 || e.Problem.Code != api.CodeDraining || !e.Transient() || e.RetryAfter != time.Second {
		t.Fatalf("Check while draining: %#v", err)
	}
	if _, err := c.Undrain(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Readyz(ctx); err != nil {
		t.Fatalf("Readyz: %v", err)
	}
	if err := c.Healthz(ctx); err != nil {
		t.Fatal(err)
	}
	if s, err := c.Status(ctx); err != nil || s.Node != "c1" || !s.RedisUp {
		t.Fatalf("Status = %+v, %v", s, err)
	}
	if hk, err := c.HotKeys(ctx, 5); err != nil || hk.Node != "c1" || len(hk.Keys) == 0 {
		t.Fatalf("HotKeys = %+v, %v", hk, err)
	}
	if ch, err := c.SetChaos(ctx, api.Chaos{ClockSkewMS: 10}); err != nil || ch.ClockSkewMS != 10 {
		t.Fatalf("SetChaos = %+v, %v", ch, err)
	}
	if ch, err := c.Chaos(ctx); err != nil || ch.ClockSkewMS != 10 {
		t.Fatalf("Chaos = %+v, %v", ch, err)
	}
	if ch, err := c.ClearChaos(ctx); err != nil || ch.ClockSkewMS != 0 {
		t.Fatalf("ClearChaos = %+v, %v", ch, err)
	}

	anon, _ := client.New(c.BaseURL(), nil)
	if _, err := anon.PutLimit(ctx, "a", api.LimitSpec{Limit: 1, WindowMS: 1, Algorithm: "gcra"}); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("PutLimit without a token: %v, want ErrUnauthorized", err)
	}
}

// TestIdempotencyKey checks that mutating calls carry the key from the
// context, and reads do not.
func TestIdempotencyKey(t *testing.T) {
	var mu sync.Mutex
	got := map[string]string{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.Method+" "+r.URL.EscapedPath()] = r.Header.Get("Idempotency-Key")
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{}`))
	}))
	defer hs.Close()
	c, _ := client.New(hs.URL, hs.Client())
	ctx := client.WithIdempotencyKey(context.Background(), "req-123")
	c.PutLimit(ctx, "a/b*", api.LimitSpec{})
	c.Drain(ctx, "n1")
	c.Limits(ctx)
	want := map[string]string{
		"PUT /api/v1/limits/a%2Fb%2A": "req-123",
		"POST /api/v1/nodes/n1/drain": "req-123",
		"GET /api/v1/limits":          "",
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s: Idempotency-Key %q (seen %v), want %q; all: %v", k, g, ok, v, got)
		}
	}
}

// TestErrors checks error decoding of problem documents, of other bodies and
// of unreachable nodes.
func TestErrors(t *testing.T) {
	cases := []struct {
		name       string
		status     int
		body, ct   string
		wantDetail string
		wantIs     error
		transient  bool
	}{
		{"problem", 404, `{"type":"about:blank","title":"Not Found","status":404,"detail":"limit \"x\": not found","code":"not_found"}`, "application/problem+json", `limit "x": not found`, client.ErrNotFound, false},
		{"plain text", 502, "bad gateway\n", "text/plain", "bad gateway", nil, true},
		{"rate limited", 429, `{"detail":"slow down"}`, "application/problem+json", "slow down", nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.ct)
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			defer hs.Close()
			c, _ := client.New(hs.URL, hs.Client())
			_, err := c.Limit(context.Background(), "x")
			var e *client.Error
			if !errors.As(err, &e) || e.StatusCode != tc.status || e.Problem.Detail != tc.wantDetail {
				t.Fatalf("err = %#v", err)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.wantIs)
			}
			if client.IsTransient(err) != tc.transient {
				t.Errorf("IsTransient = %v, want %v", !tc.transient, tc.transient)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		hs := httptest.NewServer(http.NotFoundHandler())
		url := hs.URL
		hs.Close()
		c, _ := client.New(url, nil)
		_, err := c.Nodes(context.Background())
		if err == nil || !client.IsTransient(err) {
			t.Fatalf("err = %v, want a transient error", err)
		}
	})
	t.Run("bad base url", func(t *testing.T) {
		if _, err := client.New("localhost:8080", nil); err == nil {
			t.Fatal("want an error for a URL without scheme")
		}
	})
}

func TestCheckBatch(t *testing.T) {
	c := startServer(t)
	ctx := context.Background()
	// Limit 2: of three checks of one key in a batch, two are allowed.
	ds, err := c.CheckBatch(ctx, []api.CheckRequest{{Key: "b:1"}, {Key: "b:1"}, {Key: "b:1"}, {Key: "b:2", Cost: 2}})
	if err != nil || len(ds) != 4 {
		t.Fatalf("CheckBatch = %+v, %v", ds, err)
	}
	allowed := 0
	for _, d := range ds[:3] {
		if d.Key != "b:1" || d.Limit != 2 {
			t.Errorf("decision %+v", d)
		}
		if d.Allowed {
			allowed++
		}
	}
	if allowed != 2 || !ds[3].Allowed || ds[3].Remaining != 0 || ds[3].Node != "c1" {
		t.Errorf("allowed %d of 3 (want 2); the cost-2 check: %+v", allowed, ds[3])
	}
	for _, tt := range []struct {
		name   string
		checks []api.CheckRequest
		want   string
	}{
		{"a bad key names its index", []api.CheckRequest{{Key: "ok"}, {Key: ""}}, "check 1"},
		{"a cost over the limit", []api.CheckRequest{{Key: "ok", Cost: 3}}, "exceeds the limit"},
		{"too many", make([]api.CheckRequest, api.MaxBatch+1), "more than the maximum"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.CheckBatch(ctx, tt.checks)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if ds, err := c.CheckBatch(ctx, nil); err != nil || ds != nil {
		t.Errorf("an empty batch: %v, %v", ds, err)
	}
}
