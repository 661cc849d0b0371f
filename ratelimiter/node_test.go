package ratelimiter

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/operator-dev/operator/internal/redistest"
	"github.com/operator-dev/operator/ratelimiter/api"
)

// testNode is one limiter node serving its HTTP API on a loopback port.
type testNode struct {
	l      *Limiter
	rdb    *redis.Client
	srv    *httptest.Server
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan struct{}
}

// startNode starts a node on addr and stops it when the test ends.
func startNode(tb testing.TB, addr string, cfg Config, opts HandlerOptions) *testNode {
	tb.Helper()
	if cfg.SyncInterval == 0 {
		cfg.SyncInterval = 50 * time.Millisecond
	}
	if cfg.NodeDownAfter == 0 {
		cfg.NodeDownAfter = time.Second
	}
	if cfg.RedisTimeout == 0 {
		cfg.RedisTimeout = 2 * time.Second
	}
	n := &testNode{reg: prometheus.NewRegistry(), rdb: redistest.Client(tb, addr), done: make(chan struct{})}
	cfg.Registerer = n.reg
	l, err := New(n.rdb, cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(l.Close)
	n.l = l
	opts.Gatherer = n.reg
	n.srv = httptest.NewServer(NewHandler(l, opts))
	l.cfg.Advertise = n.srv.URL
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	go func() {
		defer close(n.done)
		_ = l.Run(ctx)
	}()
	tb.Cleanup(n.stop)
	return n
}

// stop stops Run and the HTTP server; it is safe to call twice.
func (n *testNode) stop() {
	n.cancel()
	<-n.done
	n.srv.Close()
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) decode(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		tb.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r response) problem(tb testing.TB) api.Problem {
	tb.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		tb.Fatalf("content type %q, want application/problem+json; body %s", ct, r.body)
	}
	var p api.Problem
	r.decode(tb, &p)
	if p.Status != r.status || p.Detail == "" {
		tb.Fatalf("problem %+v does not match status %d or lacks a detail", p, r.status)
	}
	return p
}

// do sends a request to the node; body may be nil, a string or a value to
// encode as JSON.
func (n *testNode) do(tb testing.TB, method, path string, body any, header ...string) response {
	tb.Helper()
	return doURL(tb, n.srv.Client(), method, n.srv.URL+path, body, header...)
}

func doURL(tb testing.TB, c *http.Client, method, url string, body any, header ...string) response {
	tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			tb.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

func (n *testNode) check(tb testing.TB, key string, cost int64) (api.Decision, response) {
	tb.Helper()
	r := n.do(tb, "POST", "/v1/check", api.CheckRequest{Key: key, Cost: cost})
	var d api.Decision
	if r.status == http.StatusOK || r.status == http.StatusTooManyRequests {
		r.decode(tb, &d)
	}
	return d, r
}

func (n *testNode) limitsVersion(tb testing.TB) int64 {
	tb.Helper()
	var list api.LimitList
	n.do(tb, "GET", "/api/v1/limits", nil).decode(tb, &list)
	return list.Version
}

// startCluster starts n nodes on one Redis.
func startCluster(tb testing.TB, addr string, n int, cfg Config) []*testNode {
	tb.Helper()
	var nodes []*testNode
	for i := range n {
		c := cfg
		c.NodeID = "n" + string(rune('1'+i))
		nodes = append(nodes, startNode(tb, addr, c, HandlerOptions{}))
	}
	return nodes
}

// TestExactLimitAcrossNodes sends 1000 concurrent checks for one key, spread
// over three nodes, with a limit of 100 per 60 s: exactly 100 are allowed,
// for every algorithm, whether decisions go through the nodes' pipelining
// connections or through go-redis, and with the over-limit cache answering
// the denials (it is on by default with the Redis clock).
func TestExactLimitAcrossNodes(t *testing.T) {
	for _, backend := range redistest.Backends() {
		t.Run(backend.Name, func(t *testing.T) {
			addr := backend.Start(t)
			// All nodes share one frozen node clock in the "node" runs, which
			// isolates atomicity from refill; the "redis" runs use TIME.
			frozen := newTestClock()
			for _, v := range []struct {
				clock ClockSource
				path  string // how decisions reach Redis
			}{{ClockRedis, "pipe"}, {ClockNode, "pipe"}, {ClockRedis, "go-redis"}} {
				clock := v.clock
				nodes := startCluster(t, addr, 3, Config{Clock: clock, Now: frozen.Now, GoRedisDecisions: v.path == "go-redis"})
				for _, alg := range Algorithms() {
					t.Run(string(clock)+"/"+v.path+"/"+string(alg), func(t *testing.T) {
						key := "exact:" + string(clock) + ":" + v.path + ":" + string(alg)
						r := nodes[0].do(t, "PUT", "/api/v1/limits/"+key, api.LimitSpec{Limit: 100, WindowMS: 60000, Algorithm: string(alg)})
						if r.status != http.StatusOK {
							t.Fatalf("PUT limit: %d %s", r.status, r.body)
						}
						var put api.Limit
						r.decode(t, &put)
						want := nodes[0].l.Status().LimitsVersion
						for _, n := range nodes {
							eventually(t, time.Second, "limit applied on "+n.l.NodeID(), func() bool { return n.l.Status().LimitsVersion >= want })
						}

						var mu sync.Mutex
						statuses := map[int]int{}
						work := make(chan int)
						var wg sync.WaitGroup
						start := time.Now()
						for range 50 {
							wg.Go(func() {
								for i := range work {
									_, r := nodes[i%3].check(t, key, 1)
									mu.Lock()
									statuses[r.status]++
									mu.Unlock()
								}
							})
						}
						for i := range 1000 {
							work <- i
						}
						close(work)
						wg.Wait()
						elapsed := time.Since(start)

						allowed := statuses[http.StatusOK]
						if statuses[http.StatusOK]+statuses[http.StatusTooManyRequests] != 1000 {
							t.Fatalf("statuses %v: want only 200 and 429", statuses)
						}
						maxAllowed := 100
						if alg == GCRA && clock == ClockRedis {
							// GCRA refills one unit every 600 ms of real time;
							// the exact case is the frozen-clock run.
							maxAllowed += int(elapsed / (600 * time.Millisecond))
						}
						if allowed < 100 || allowed > maxAllowed {
							t.Fatalf("allowed %d of 1000 in %s, want exactly 100 (at most %d)", allowed, elapsed, maxAllowed)
						}
					})
				}
			}
		})
	}
}

// TestPutLimitIsEnforced checks that /v1/check applies the stored limit for
// the key, with the documented precedence, and that a caller cannot raise it.
func TestPutLimitIsEnforced(t *testing.T) {
	addr := redistest.Start(t).Addr
	nodes := startCluster(t, addr, 2, Config{DefaultLimit: 1000})
	put := func(pattern string, limit int64) {
		t.Helper()
		r := nodes[0].do(t, "PUT", "/api/v1/limits/"+pattern, api.LimitSpec{Limit: limit, WindowMS: 60000, Algorithm: "fixed_window"})
		if r.status != http.StatusOK {
			t.Fatalf("PUT %s: %d %s", pattern, r.status, r.body)
		}
	}
	put("user:*", 3)
	put("user:a*", 4)
	put("user:vip", 5)
	v := nodes[0].limitsVersion(t)
	eventually(t, time.Second, "limits on node 2", func() bool { return nodes[1].limitsVersion(t) == v })

	cases := []struct {
		key       string
		wantLimit int64
	}{
		{"user:1", 3},       // prefix
		{"user:ab", 4},      // longest prefix
		{"user:vip", 5},     // exact beats prefix
		{"user:vipx", 3},    // exact means exact
		{"other", 1000},     // default
		{"user:a", 4},       // a prefix matches the key equal to it
		{"user:", 3},        // and the bare prefix
		{"USER:1", 1000},    // case matters
		{"user:vip:2", 3},   // exact does not act as a prefix
		{"user:abc/def", 4}, // path characters in keys
	}
	for _, tc := range cases {
		t.Run(tc.key, func(t *testing.T) {
			allowed := 0
			for i := range int(min(tc.wantLimit, 10)) + 1 {
				d, r := nodes[i%2].check(t, tc.key, 1)
				if d.Limit != tc.wantLimit {
					t.Fatalf("limit %d, want %d (%s)", d.Limit, tc.wantLimit, r.body)
				}
				if r.status == http.StatusOK {
					allowed++
				}
			}
			if tc.wantLimit <= 10 && allowed != int(tc.wantLimit) {
				t.Errorf("allowed %d, want %d", allowed, tc.wantLimit)
			}
		})
	}

	t.Run("a caller cannot raise the limit", func(t *testing.T) {
		r := nodes[0].do(t, "POST", "/v1/check", `{"key":"user:1","cost":1,"limit":1000000}`)
		if r.status != http.StatusBadRequest || !strings.Contains(r.problem(t).Detail, "unknown field") {
			t.Fatalf("got %d %s, want 400 unknown field", r.status, r.body)
		}
		r = nodes[0].do(t, "POST", "/v1/check", `{"key":"user:zz","cost":4}`)
		if r.status != http.StatusBadRequest || !strings.Contains(r.problem(t).Detail, "exceeds the limit 3") {
			t.Fatalf("got %d %s, want 400 cost exceeds the limit", r.status, r.body)
		}
	})

	t.Run("deleting a limit falls back", func(t *testing.T) {
		if r := nodes[0].do(t, "DELETE", "/api/v1/limits/user:vip", nil); r.status != http.StatusOK {
			t.Fatalf("DELETE: %d %s", r.status, r.body)
		}
		eventually(t, time.Second, "node 2 applies the delete", func() bool {
			d, _ := nodes[1].check(t, "user:vip", 1)
			return d.Limit == 3
		})
		if r := nodes[0].do(t, "DELETE", "/api/v1/limits/user:vip", nil); r.status != http.StatusNotFound {
			t.Fatalf("second DELETE: %d %s, want 404", r.status, r.body)
		}
	})
}

// TestEveryKeyHasTTL loads 10 000 distinct keys over every algorithm, plus
// limits, blocks and the node registry, then checks that every key in the
// ratelimit: namespace has a TTL.
func TestEveryKeyHasTTL(t *testing.T) {
	addr := redistest.Start(t).Addr
	n := startNode(t, addr, Config{NodeID: "n1"}, HandlerOptions{})
	for _, alg := range Algorithms() {
		if _, err := n.l.PutLimit(context.Background(), "load:"+string(alg)+":*", Limit{Limit: 2, Window: time.Minute, Algorithm: alg}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := n.l.Block(context.Background(), "load:blocked", time.Minute, "test"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "node registered", func() bool {
		nodes, err := n.l.Nodes(context.Background())
		return err == nil && len(nodes) == 1
	})
	// A drain request creates the drain hash; undrain at once to keep serving.
	if err := n.l.SetDraining(context.Background(), "n1", true); err != nil {
		t.Fatal(err)
	}
	if err := n.l.SetDraining(context.Background(), "n1", false); err != nil {
		t.Fatal(err)
	}
	if err := n.l.SetDraining(context.Background(), "n1", true); err != nil {
		t.Fatal(err)
	}
	// Check, the library API, decides also while the node drains, so the
	// load below runs with the drain hash present.
	keys := make(chan string)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for k := range keys {
				for range 3 { // the third is denied: exercise the denial path too
					if _, err := n.l.Check(context.Background(), k, 1); err != nil {
						t.Errorf("Check %s: %v", k, err)
						return
					}
				}
			}
		})
	}
	for i := range 10000 {
		keys <- "load:" + string(Algorithms()[i%4]) + ":" + strconv.Itoa(i)
	}
	close(keys)
	wg.Wait()

	total, missing := keysWithoutTTL(t, n.rdb)
	if total < 10000 {
		t.Fatalf("only %d ratelimit:* keys after 10 000 distinct keys", total)
	}
	if len(missing) > 0 {
		t.Fatalf("%d of %d keys have no TTL, e.g. %v", len(missing), total, missing[:min(len(missing), 5)])
	}
	t.Logf("%d ratelimit:* keys, all with a TTL", total)
}

// TestKilledNodeListedDown checks that a node that stops heartbeating stays
// listed as down, and that a node stopping cleanly is listed down at once.
func TestKilledNodeListedDown(t *testing.T) {
	addr := redistest.Start(t).Addr
	cfg := Config{NodeDownAfter: 300 * time.Millisecond, SyncInterval: 50 * time.Millisecond}
	nodes := startCluster(t, addr, 3, cfg)
	state := func(id string) string {
		var list api.NodeList
		r := nodes[0].do(t, "GET", "/api/v1/nodes", nil)
		if r.status != http.StatusOK {
			t.Fatalf("GET nodes: %d %s", r.status, r.body)
		}
		r.decode(t, &list)
		if list.Count != len(list.Nodes) {
			t.Fatalf("count %d != %d nodes", list.Count, len(list.Nodes))
		}
		for _, n := range list.Nodes {
			if n.ID == id {
				if n.Address == "" || n.Version == "" || n.StartedAt.IsZero() || n.LastHeartbeat.IsZero() {
					t.Fatalf("incomplete node entry %+v", n)
				}
				return n.State
			}
		}
		return "missing"
	}
	for _, id := range []string{"n1", "n2", "n3"} {
		eventually(t, 2*time.Second, id+" up", func() bool { return state(id) == api.NodeUp })
	}

	// A crash: the node's Redis connection dies, so it cannot say goodbye.
	_ = nodes[1].rdb.Close()
	nodes[1].stop()
	eventually(t, 3*time.Second, "killed node listed down", func() bool { return state("n2") == api.NodeDown })

	// A clean stop is listed down at once.
	nodes[2].stop()
	if got := state("n3"); got != api.NodeDown {
		t.Fatalf("cleanly stopped node is %q, want down", got)
	}
	if got := state("n1"); got != api.NodeUp {
		t.Fatalf("live node is %q, want up", got)
	}
}
