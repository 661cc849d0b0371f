package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/spf13/cobra"

	"github.com/operator-dev/operator/actuators"
	"github.com/operator-dev/operator/internal/bus"
	"github.com/operator-dev/operator/internal/bus/bustest"
	"github.com/operator-dev/operator/internal/redistest"
	"github.com/operator-dev/operator/pipeline"
	"github.com/operator-dev/operator/ratelimiter"
	"github.com/operator-dev/operator/schemas"
)

// countingNode is a real rate limiter node that records its mutating API
// calls and can answer them with an injected status instead.
type countingNode struct {
	url   string
	mu    sync.Mutex
	calls []string // "METHOD path idempotency-key"
	fail  atomic.Int32
	// failN answers the next failN mutating calls with status fail.
	failN atomic.Int32
}

func (n *countingNode) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/v1/") {
			n.mu.Lock()
			n.calls = append(n.calls, r.Method+" "+r.URL.EscapedPath()+" "+r.Header.Get("Idempotency-Key"))
			n.mu.Unlock()
			if n.failN.Add(-1) >= 0 {
				w.Header().Set("Content-Type", "application/problem+json")
				w.WriteHeader(int(n.fail.Load()))
				fmt.Fprintf(w, `{"title":"injected","status":%d,"detail":"injected failure"}`, n.fail.Load())
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// callsWith returns the recorded calls that carry the idempotency key id.
func (n *countingNode) callsWith(id string) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, c := range n.calls {
		if strings.HasSuffix(c, " "+id) {
			out = append(out, c)
		}
	}
	return out
}

func startCountingNode(t *testing.T, id, redisURL, token string) *countingNode {
	t.Helper()
	rdb, err := ratelimiter.NewRedisClient(redisURL, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	l, err := ratelimiter.New(rdb, ratelimiter.Config{NodeID: id, RedisTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	n := &countingNode{}
	srv := httptest.NewServer(n.wrap(ratelimiter.NewHandler(l, ratelimiter.HandlerOptions{Token: token})))
	t.Cleanup(func() {
		srv.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("node %s: %v", id, err)
		}
	})
	n.url = srv.URL
	return n
}

var requestIDRE = regexp.MustCompile(`id (act-[0-9a-f]+)`)

// TestActuateEndToEnd runs `operator actuate` in execute mode against two
// real rate limiter nodes on a real redis-server, and drives it with the
// commands a person uses.
func TestActuateEndToEnd(t *testing.T) {
	redisURL := redistest.Start(t).URL()
	n1 := startCountingNode(t, "n1", redisURL, "tok")
	n2 := startCountingNode(t, "n2", redisURL, "tok")
	b := bustest.New(t, bustest.WithListener)
	url := b.ClientURL()
	ctx := bustest.Context(t, 2*time.Minute)

	actx, stop := context.WithCancel(ctx)
	var actOut syncBuffer
	actDone := make(chan error, 1)
	go func() {
		root := newRootCmd()
		root.SetOut(&actOut)
		root.SetErr(&actOut)
		root.SetArgs([]string{"actuate", "--nats", url, "--mode", "execute", "--worker-id", "e2e",
			"--ratelimiter-url", n1.url + "," + n2.url, "--ratelimiter-token", "tok",
			"--max-actions", "5", "--per", "1h", "--max-attempts", "3", "--execute-timeout", "2s"})
		actDone <- root.ExecuteContext(actx)
	}()
	t.Cleanup(func() {
		stop()
		if err := <-actDone; err != nil {
			t.Errorf("actuate: %v\n%s", err, actOut.String())
		}
	})

	act := func(args ...string) string {
		t.Helper()
		out, err := run(t, ctx, append(append([]string{"act"}, args...), "--nats", url)...)
		if err != nil {
			t.Fatalf("act %v: %v\n%s", args, err, out)
		}
		m := requestIDRE.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("act printed no id: %s", out)
		}
		return m[1]
	}
	// show polls `operator actions show ID` until its output contains all of
	// want.
	show := func(id string, want ...string) string {
		t.Helper()
		var out string
		bustest.Eventually(t, 30*time.Second, func() bool {
			var err error
			out, err = run(t, ctx, "actions", "show", id, "--nats", url)
			if err != nil {
				return false
			}
			for _, w := range want {
				if !strings.Contains(out, w) {
					return false
				}
			}
			return true
		}, fmt.Sprintf("actions show %s never showed %q; last:\n%s\nactuator log:\n%s", id, want, out, actOut.String()))
		return out
	}
	calls := func(id string) int { return len(n1.callsWith(id)) + len(n2.callsWith(id)) }

	t.Run("reset_counter executes once, with the request id as Idempotency-Key, and is verified", func(t *testing.T) {
		id := act("ratelimiter", "prod", "reset_counter", "key=user:1", "--reason", "stuck")
		show(id, `"outcome": "succeeded"`, `"attempts": 1`)
		if got := calls(id); got != 1 {
			t.Fatalf("%d API calls with Idempotency-Key %s, want 1", got, id)
		}
		publishRateLimiterObservation(t, b)
		show(id, "verified yes", `"verified": true`)
	})

	t.Run("5xx is retried", func(t *testing.T) {
		n1.fail.Store(503)
		n2.fail.Store(503)
		n1.failN.Store(1)
		n2.failN.Store(1)
		id := act("ratelimiter", "prod", "reset_counter", "key=user:2")
		show(id, `"outcome": "succeeded"`, `"attempts": 3`)
		if got := calls(id); got != 3 {
			t.Fatalf("%d API calls, want 3 (two 503s, then success)", got)
		}
	})

	t.Run("4xx is not retried", func(t *testing.T) {
		id := act("ratelimiter", "prod", "undrain_node", "node_id=n9")
		show(id, `"outcome": "failed"`, "permanent error, not retried", "404")
		if got := calls(id); got != 1 {
			t.Fatalf("%d API calls, want 1", got)
		}
	})

	t.Run("wildcard target is refused before the API", func(t *testing.T) {
		id := act("ratelimiter", "prod", "update_limit", "pattern=*", "limit=5", "window_ms=1000", "algorithm=gcra")
		show(id, `"outcome": "rejected"`, "matches every resource")
		if got := calls(id); got != 0 {
			t.Fatalf("%d API calls, want 0", got)
		}
	})

	t.Run("approve executes, reject does not", func(t *testing.T) {
		id := act("ratelimiter", "prod", "block_key", "key=bot:7", "ttl_ms=60000", "reason=hot key")
		show(id, "awaiting_approval")
		if got := calls(id); got != 0 {
			t.Fatalf("%d API calls before approval", got)
		}
		out, err := run(t, ctx, "approve", id[:12], "--nats", url, "--by", "alice")
		if err != nil || !strings.Contains(out, "approved "+id) {
			t.Fatalf("approve: %v\n%s", err, out)
		}
		show(id, `"outcome": "succeeded"`, `"state": "approved"`)
		if got := calls(id); got != 1 {
			t.Fatalf("%d API calls after approval, want 1", got)
		}

		id2 := act("ratelimiter", "prod", "block_key", "key=bot:8", "ttl_ms=60000", "reason=hot key")
		show(id2, "awaiting_approval")
		if out, err := run(t, ctx, "reject", id2, "--nats", url, "--reason", "false alarm", "--by", "bob"); err != nil {
			t.Fatalf("reject: %v\n%s", err, out)
		}
		show(id2, `"outcome": "rejected"`, "rejected by bob: false alarm")
		if out, err := run(t, ctx, "approve", id2, "--nats", url); !errors.Is(err, actuators.ErrAlreadyDecided) {
			t.Fatalf("approve after reject: %v\n%s", err, out)
		}
		if got := calls(id2); got != 0 {
			t.Fatalf("%d API calls for a rejected request", got)
		}
	})

	t.Run("kill switch", func(t *testing.T) {
		if out, err := run(t, ctx, "control", "stop", "--nats", url, "--reason", "incident", "--by", "carol"); err != nil {
			t.Fatalf("control stop: %v\n%s", err, out)
		}
		id := act("ratelimiter", "prod", "reset_counter", "key=user:3")
		show(id, `"outcome": "rejected"`, "kill switch engaged for all subjects by carol")
		out, err := run(t, ctx, "control", "status", "--nats", url)
		if err != nil || !strings.Contains(out, "KILL SWITCH ENGAGED") || !strings.Contains(out, "ratelimiter") {
			t.Fatalf("control status: %v\n%s", err, out)
		}
		if out, err := run(t, ctx, "control", "start", "--nats", url); err != nil {
			t.Fatalf("control start: %v\n%s", err, out)
		}
		id = act("ratelimiter", "prod", "reset_counter", "key=user:3")
		show(id, `"outcome": "succeeded"`)
	})

	t.Run("actions list shows newest first", func(t *testing.T) {
		out, err := run(t, ctx, "actions", "list", "--nats", url, "--limit", "3")
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 4 || !strings.Contains(lines[1], "reset_counter") || !strings.Contains(lines[1], "succeeded") ||
			!strings.Contains(lines[2], "rejected") {
			t.Fatalf("actions list:\n%s", out)
		}
	})
}

// TestCrashAfterTheAPICallWithRealNodes crashes an actuator wired as
// `operator actuate` wires it right after the rate limiter acted, then lets a
// second one take the redelivered request: the node sees one call.
func TestCrashAfterTheAPICallWithRealNodes(t *testing.T) {
	redisURL := redistest.Start(t).URL()
	n1 := startCountingNode(t, "n1", redisURL, "")
	b := bustest.New(t, bustest.WithListener)
	ctx := bustest.Context(t, time.Minute)
	var sf subjectFlags
	cmd := &cobra.Command{}
	addSubjectFlags(cmd, builtinSubjects(), &sf)
	if err := cmd.Flags().Parse([]string{"--subjects", "ratelimiter", "--ratelimiter-url", n1.url}); err != nil {
		t.Fatal(err)
	}
	subs, err := actuatorSubjects(sf, true)
	if err != nil {
		t.Fatal(err)
	}
	deps, err := pipeline.ActuatorDeps(ctx, b, subs)
	if err != nil {
		t.Fatal(err)
	}
	// The first actuator dies once the node has answered: its later
	// ledger writes and publishes never arrive.
	var dead atomic.Bool
	real := deps.Subjects["ratelimiter"]
	crashing := deps
	crashing.Subjects = map[string]actuators.Subject{"ratelimiter": {Catalog: real.Catalog,
		Executor: actuators.ExecutorFunc(func(ctx context.Context, req schemas.ActionRequest) (schemas.ActionResult, error) {
			res, err := real.Executor.Execute(ctx, req)
			dead.Store(true)
			return res, err
		})}}
	crashing.Ledger = deadStore{Store: deps.Ledger, dead: &dead}
	crashing.Bus = deadBus{Bus: deps.Bus, dead: &dead}
	cfg := actuators.Config{WorkerID: "first", Mode: schemas.ModeExecute, ExecuteTimeout: 500 * time.Millisecond,
		MaxAttempts: 1, LeaseMargin: 500 * time.Millisecond, Redelivery: []time.Duration{100 * time.Millisecond}}
	first, err := actuators.New(cfg, crashing)
	if err != nil {
		t.Fatal(err)
	}
	fctx, stopFirst := context.WithCancel(ctx)
	firstDone := make(chan error, 1)
	go func() { firstDone <- first.Run(fctx) }()

	id := "crash-" + fmt.Sprint(time.Now().UnixNano())
	req := schemas.ActionRequest{ID: id, Subject: "ratelimiter", Instance: "prod", Action: "reset_counter",
		Params: map[string]any{"key": "user:9"}, RequestedBy: "test", RequestedAt: time.Now()}
	e, err := schemas.NewEvent(schemas.EventSpec{Type: schemas.TypeActionRequested, Source: "/test", Subject: "ratelimiter/prod",
		ID: id, Time: req.RequestedAt}, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, "operator.action.requested.ratelimiter.prod", e); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 20*time.Second, dead.Load, "the first actuator called the node")
	stopFirst()
	if err := <-firstDone; err != nil {
		t.Fatal(err)
	}

	cfg.WorkerID = "second"
	second, err := actuators.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	sctx, stopSecond := context.WithCancel(ctx)
	secondDone := make(chan error, 1)
	go func() { secondDone <- second.Run(sctx) }()
	t.Cleanup(func() { stopSecond(); <-secondDone })

	var res schemas.ActionResult
	bustest.Eventually(t, 20*time.Second, func() bool {
		entry, err := actuators.ReadLedger(ctx, deps.Ledger, id)
		if err != nil || entry.State != actuators.LedgerDone {
			return false
		}
		res = *entry.Result
		return true
	}, "the second actuator recorded an outcome")
	if res.Outcome != schemas.OutcomeFailed || !strings.Contains(res.Reason, "outcome unknown: first claimed the request") {
		t.Fatalf("outcome %s %q", res.Outcome, res.Reason)
	}
	if got := n1.callsWith(id); len(got) != 1 {
		t.Fatalf("node received %v, want exactly one call", got)
	}
}

type deadStore struct {
	schemas.Store
	dead *atomic.Bool
}

func (s deadStore) CompareAndSwap(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	if s.dead.Load() {
		return 0, errors.New("process is gone")
	}
	return s.Store.CompareAndSwap(ctx, key, value, rev)
}

type deadBus struct {
	actuators.Bus
	dead *atomic.Bool
}

func (d deadBus) Publish(ctx context.Context, subject string, e event.Event) error {
	if d.dead.Load() {
		return errors.New("process is gone")
	}
	return d.Bus.Publish(ctx, subject, e)
}

// publishRateLimiterObservation publishes an observation of ratelimiter/prod
// in which no counter is stuck.
func publishRateLimiterObservation(t *testing.T, b *bus.Bus) {
	t.Helper()
	now := time.Now()
	state := json.RawMessage(`{"redis":{"reachable":true,"ping_ms":0.2,"keys_without_ttl":{"count":0,"sample":[],"scanned":3,"complete":true}},` +
		`"nodes":[],"keys":[],"limits":[],"blocks":[],"summary":{"nodes_total":2,"nodes_up":2,"keys_tracked":0,"median_key_checks_per_s":0}}`)
	obs := schemas.Observation{Subject: "ratelimiter", Instance: "prod", ObservedAt: now,
		Observer: schemas.ObserverInfo{DurationMS: 2}, State: state}
	e, err := schemas.NewEvent(schemas.EventSpec{Type: schemas.TypeObservation, Source: "/observers/ratelimiter/prod",
		Subject: "ratelimiter/prod", ID: fmt.Sprintf("obs-%d", now.UnixNano()), Time: now}, obs)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(context.Background(), "operator.obs.ratelimiter.prod", e); err != nil {
		t.Fatal(err)
	}
}
