package ratelimiter

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/operator-dev/operator/actuators"
	"github.com/operator-dev/operator/internal/redistest"
	"github.com/operator-dev/operator/ratelimiter"
	"github.com/operator-dev/operator/ratelimiter/api"
	"github.com/operator-dev/operator/ratelimiter/client"
	"github.com/operator-dev/operator/schemas"
)

// node is one real rate limiter node in this process, behind a recorder
// that counts the management calls and can inject failures.
type node struct {
	id     string
	url    string
	client *client.Client

	mu    sync.Mutex
	calls []apiCall
	// fail, when set, answers a mutating call instead of the node.
	fail func(r *http.Request) int
}

type apiCall struct {
	method, path, idempotencyKey string
}

func (n *node) ServeHTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mutating := r.Method != http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/v1/")
		n.mu.Lock()
		if mutating {
			n.calls = append(n.calls, apiCall{method: r.Method, path: r.URL.EscapedPath(), idempotencyKey: r.Header.Get("Idempotency-Key")})
		}
		fail := n.fail
		n.mu.Unlock()
		if mutating && fail != nil {
			if status := fail(r); status != 0 {
				w.Header().Set("Content-Type", "application/problem+json")
				w.WriteHeader(status)
				fmt.Fprintf(w, `{"type":"about:blank","title":"injected","status":%d,"detail":"injected failure"}`, status)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// mutations returns the mutating calls the node received.
func (n *node) mutations() []apiCall {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]apiCall(nil), n.calls...)
}

func (n *node) setFail(f func(r *http.Request) int) {
	n.mu.Lock()
	n.fail = f
	n.mu.Unlock()
}

// startNodes starts count real nodes sharing the Redis server at addr.
func startNodes(t *testing.T, addr string, count int, token string) []*node {
	t.Helper()
	var nodes []*node
	for i := range count {
		n := &node{id: fmt.Sprintf("n%d", i+1)}
		rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		t.Cleanup(func() { _ = rdb.Close() })
		l, err := ratelimiter.New(rdb, ratelimiter.Config{NodeID: n.id, RedisTimeout: 2 * time.Second,
			DefaultLimit: 5, DefaultWindow: time.Minute, DefaultAlgorithm: ratelimiter.Algorithm(api.AlgorithmFixedWindow)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(l.Close)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- l.Run(ctx) }()
		srv := httptest.NewServer(n.ServeHTTP(ratelimiter.NewHandler(l, ratelimiter.HandlerOptions{Token: token})))
		t.Cleanup(func() {
			srv.Close()
			cancel()
			if err := <-done; err != nil {
				t.Errorf("node %s: %v", n.id, err)
			}
		})
		n.url = srv.URL
		c, err := client.New(srv.URL, srv.Client())
		if err != nil {
			t.Fatal(err)
		}
		n.client = c.WithToken(token)
		nodes = append(nodes, n)
	}
	// Wait until every node has registered.
	eventually(t, 10*time.Second, "nodes registered", func() bool {
		l, err := nodes[0].client.Nodes(context.Background())
		return err == nil && l.Count == count
	})
	return nodes
}

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true within %s", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var seq int

func request(action string, params map[string]any) schemas.ActionRequest {
	seq++
	return schemas.ActionRequest{ID: fmt.Sprintf("req-%d-%d", time.Now().UnixNano(), seq), Subject: Name, Instance: "prod",
		Action: action, Params: params, RequestedBy: "test", RequestedAt: time.Now()}
}

// execute validates params against the catalog and runs one attempt.
func execute(t *testing.T, e *Executor, req schemas.ActionRequest) (schemas.ActionResult, error) {
	t.Helper()
	cat, err := Catalog()
	if err != nil {
		t.Fatal(err)
	}
	a, ok := cat.Action(req.Action)
	if !ok {
		t.Fatalf("no action %s", req.Action)
	}
	if err := a.ValidateParams(req.Params); err != nil {
		t.Fatalf("params: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return e.Execute(ctx, req)
}

// TestExecutorActions runs every action against real nodes, on miniredis
// (the embedded store) and on a real redis-server, and checks its effect
// through the API.
func TestExecutorActions(t *testing.T) {
	for _, backend := range redistest.Backends() {
		t.Run(backend.Name, func(t *testing.T) { testExecutorActions(t, backend.Start(t)) })
	}
}

func testExecutorActions(t *testing.T, addr string) {
	nodes := startNodes(t, addr, 2, "s3cret")
	e, err := NewExecutor(nodes[0].client, nodes[1].client)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := nodes[0].client
	tests := []struct {
		name    string
		setup   func(t *testing.T)
		req     schemas.ActionRequest
		wantErr string
		check   func(t *testing.T, out json.RawMessage)
	}{
		{
			name: "reset_counter empties a full counter",
			setup: func(t *testing.T) {
				for range 6 {
					if _, err := c.Check(ctx, "user:1", 1); err != nil {
						t.Fatal(err)
					}
				}
			},
			req: request("reset_counter", map[string]any{"key": "user:1"}),
			check: func(t *testing.T, out json.RawMessage) {
				d, err := c.Check(ctx, "user:1", 1)
				if err != nil || !d.Allowed || d.Remaining != 4 {
					t.Fatalf("after reset: %+v, %v", d, err)
				}
			},
		},
		{
			name: "update_limit sets what checks enforce",
			req: request("update_limit", map[string]any{"pattern": "api:*", "limit": 2, "window_ms": 60000,
				"algorithm": api.AlgorithmSlidingWindowLog}),
			check: func(t *testing.T, out json.RawMessage) {
				for _, n := range nodes { // each node applies it within a second
					eventually(t, 5*time.Second, n.id+" enforces the limit", func() bool {
						l, err := n.client.Limit(ctx, "api:*")
						d, cerr := n.client.Check(ctx, "api:x", 1)
						return err == nil && l.Limit == 2 && l.Algorithm == api.AlgorithmSlidingWindowLog && cerr == nil && d.Limit == 2
					})
				}
			},
		},
		{
			name: "block_key denies the key",
			req:  request("block_key", map[string]any{"key": "bot:7", "ttl_ms": 60000, "reason": "hot key"}),
			check: func(t *testing.T, out json.RawMessage) {
				d, err := nodes[1].client.Check(ctx, "bot:7", 1)
				if err != nil || d.Allowed || !d.Blocked {
					t.Fatalf("check after block: %+v, %v", d, err)
				}
			},
		},
		{
			name: "unblock_key lifts it",
			req:  request("unblock_key", map[string]any{"key": "bot:7"}),
			check: func(t *testing.T, out json.RawMessage) {
				d, err := c.Check(ctx, "bot:7", 1)
				if err != nil || !d.Allowed {
					t.Fatalf("check after unblock: %+v, %v", d, err)
				}
			},
		},
		{
			name: "unblock_key of a key not blocked succeeds",
			req:  request("unblock_key", map[string]any{"key": "never-blocked"}),
		},
		{
			name: "drain_node drains the node",
			req:  request("drain_node", map[string]any{"node_id": "n2"}),
			check: func(t *testing.T, out json.RawMessage) {
				eventually(t, 5*time.Second, "n2 draining", func() bool {
					l, err := c.Nodes(ctx)
					return err == nil && l.Nodes[1].State == api.NodeDraining
				})
			},
		},
		{
			name:    "drain_node refuses to drain the last node up",
			req:     request("drain_node", map[string]any{"node_id": "n1"}),
			wantErr: "refused: n1 is the only node up",
		},
		{
			name:    "drain_node refuses an unknown node",
			req:     request("drain_node", map[string]any{"node_id": "n9"}),
			wantErr: `refused: node "n9" is not in the registry`,
		},
		{
			name: "undrain_node puts it back",
			req:  request("undrain_node", map[string]any{"node_id": "n2"}),
			check: func(t *testing.T, out json.RawMessage) {
				eventually(t, 5*time.Second, "n2 up", func() bool {
					l, err := c.Nodes(ctx)
					return err == nil && l.Nodes[1].State == api.NodeUp
				})
			},
		},
		{
			name:    "undrain_node of an unknown node is a permanent 404",
			req:     request("undrain_node", map[string]any{"node_id": "n9"}),
			wantErr: "404",
		},
	}
	for _, tt := range tests { // in order: later cases build on earlier ones
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup(t)
			}
			res, err := execute(t, e, tt.req)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				if actuators.IsTransient(err) {
					t.Fatalf("error %v is transient; it must not be retried", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("execute: %v", err)
			}
			if !json.Valid(res.Output) {
				t.Fatalf("output %q", res.Output)
			}
			if tt.check != nil {
				tt.check(t, res.Output)
			}
		})
	}
	// Every mutating call carried its request id as the Idempotency-Key.
	for _, n := range nodes {
		for _, c := range n.mutations() {
			if !strings.HasPrefix(c.idempotencyKey, "req-") {
				t.Errorf("%s %s on %s without the request id as Idempotency-Key: %q", c.method, c.path, n.id, c.idempotencyKey)
			}
		}
	}
}

// TestExecutorErrors checks how the API's failures are classified: the
// worker retries only what is transient.
func TestExecutorErrors(t *testing.T) {
	for _, backend := range redistest.Backends() {
		t.Run(backend.Name, func(t *testing.T) { testExecutorErrors(t, backend.Start(t)) })
	}
}

func testExecutorErrors(t *testing.T, addr string) {
	nodes := startNodes(t, addr, 1, "s3cret")
	closed := closedURL(t)
	tests := []struct {
		name          string
		clients       func() []*client.Client
		fail          func(r *http.Request) int
		wantErr       string
		wantTransient bool
		wantCalls     int
	}{
		{name: "503 is transient", fail: func(*http.Request) int { return 503 }, wantErr: "503", wantTransient: true, wantCalls: 1},
		{name: "500 is transient", fail: func(*http.Request) int { return 500 }, wantErr: "500", wantTransient: true, wantCalls: 1},
		{name: "429 is transient", fail: func(*http.Request) int { return 429 }, wantErr: "429", wantTransient: true, wantCalls: 1},
		{name: "400 is permanent", fail: func(*http.Request) int { return 400 }, wantErr: "400", wantCalls: 1},
		{name: "409 is permanent", fail: func(*http.Request) int { return 409 }, wantErr: "409", wantCalls: 1},
		{name: "wrong token is a permanent 401", clients: func() []*client.Client { return []*client.Client{nodes[0].client.WithToken("wrong")} },
			wantErr: "401", wantCalls: 1},
		{name: "a refused connection moves to the next node",
			clients: func() []*client.Client { return []*client.Client{mustClient(t, closed), nodes[0].client} }, wantCalls: 1},
		{name: "no node reachable is transient",
			clients: func() []*client.Client { return []*client.Client{mustClient(t, closed)} }, wantErr: "connection refused", wantTransient: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clients := []*client.Client{nodes[0].client}
			if tt.clients != nil {
				clients = tt.clients()
			}
			e, err := NewExecutor(clients...)
			if err != nil {
				t.Fatal(err)
			}
			nodes[0].setFail(tt.fail)
			defer nodes[0].setFail(nil)
			before := len(nodes[0].mutations())
			_, err = execute(t, e, request("reset_counter", map[string]any{"key": "user:1"}))
			if got := len(nodes[0].mutations()) - before; got != tt.wantCalls {
				t.Errorf("node received %d calls, want %d", got, tt.wantCalls)
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("execute: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
			if got := actuators.IsTransient(err); got != tt.wantTransient {
				t.Fatalf("IsTransient(%v) = %v, want %v", err, got, tt.wantTransient)
			}
		})
	}
}

func TestExecutorRefusesUnknownAction(t *testing.T) {
	e, err := NewExecutor(mustClient(t, "http://127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Execute(context.Background(), request("format_disk", map[string]any{}))
	if err == nil || actuators.IsTransient(err) {
		t.Fatalf("unknown action: %v", err)
	}
	if _, err := NewExecutor(); err == nil {
		t.Fatal("an executor without nodes was accepted")
	}
}

// closedURL returns the URL of a loopback port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr
}

func mustClient(t *testing.T, url string) *client.Client {
	t.Helper()
	c, err := client.New(url, &http.Client{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c.WithToken("s3cret")
}
