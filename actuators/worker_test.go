package actuators

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/operator-dev/operator/internal/bus/bustest"
	"github.com/operator-dev/operator/schemas"
)

func firing(fp, episode string) schemas.AlertRecord {
	return schemas.AlertRecord{Fingerprint: fp, Subject: "fake", Instance: "i1", Rule: "r", Key: "k",
		State: schemas.AlertFiring, Episode: episode}
}

// TestGates sends one request per case through a worker and checks the
// outcome, the reason and whether the executor was called. The gates run in
// order, so each case also shows which gate answers first.
func TestGates(t *testing.T) {
	violation := &schemas.ViolationRef{Fingerprint: "fake/i1/r/k", Episode: "ep1", Rule: "r", Key: "k"}
	recent := func(entries ...budgetEntry) budgetRecord {
		return budgetRecord{MaxActions: 2, Per: time.Hour, Entries: entries}
	}
	tests := []struct {
		name        string
		mode        string
		setup       func(h *harness)
		req         func() schemas.ActionRequest
		wantOutcome string
		wantReason  string
		wantCalls   int
		// wantGates, when set, is every gate's decision in order.
		wantGates string
	}{
		{
			name:        "valid request executes",
			req:         func() schemas.ActionRequest { return newRequest("poke", map[string]any{"key": "user:1"}) },
			wantOutcome: schemas.OutcomeSucceeded, wantReason: "executed in 1 attempt", wantCalls: 1,
			wantGates: "catalog=passed kill_switch=passed mode=passed precondition=passed budget=passed approval=passed ledger=passed",
		},
		{
			name:        "unknown action is rejected by the catalog gate",
			req:         func() schemas.ActionRequest { return newRequest("explode", map[string]any{}) },
			wantOutcome: schemas.OutcomeRejected, wantReason: `catalog: unknown action "explode" for fake (known: poke, tune, nuke, flush)`,
			wantGates: "catalog=refused",
		},
		{
			name:        "missing param is rejected",
			req:         func() schemas.ActionRequest { return newRequest("poke", map[string]any{}) },
			wantOutcome: schemas.OutcomeRejected, wantReason: "invalid params: params of poke: at /: missing property 'key'",
		},
		{
			name:        "unknown param is rejected",
			req:         func() schemas.ActionRequest { return newRequest("poke", map[string]any{"key": "a", "all": true}) },
			wantOutcome: schemas.OutcomeRejected, wantReason: "additional properties 'all' not allowed",
		},
		{
			name: "wrongly typed param is rejected",
			req: func() schemas.ActionRequest {
				return newRequest("tune", map[string]any{"pattern": "a*", "limit": "many"})
			},
			wantOutcome: schemas.OutcomeRejected, wantReason: "invalid params",
		},
		{
			name: "global kill switch rejects",
			setup: func(h *harness) {
				putJSON(t, h.control, KeyKillSwitch, KillSwitch{Engaged: true, By: "alice", Reason: "incident 12", At: time.Now()})
			},
			req:         func() schemas.ActionRequest { return newRequest("poke", map[string]any{"key": "a"}) },
			wantOutcome: schemas.OutcomeRejected, wantReason: "kill switch engaged for all subjects by alice",
			wantGates: "catalog=passed kill_switch=refused",
		},
		{
			name: "subject kill switch rejects",
			setup: func(h *harness) {
				putJSON(t, h.control, KeyKillSwitch+"/fake", KillSwitch{Subject: "fake", Engaged: true, By: "bob", At: time.Now()})
			},
			req:         func() schemas.ActionRequest { return newRequest("poke", map[string]any{"key": "a"}) },
			wantOutcome: schemas.OutcomeRejected, wantReason: "kill switch engaged for fake by bob",
		},
		{
			name: "released kill switch lets the request through",
			setup: func(h *harness) {
				putJSON(t, h.control, KeyKillSwitch, KillSwitch{Engaged: false, By: "alice", At: time.Now()})
			},
			req:         func() schemas.ActionRequest { return newRequest("poke", map[string]any{"key": "a"}) },
			wantOutcome: schemas.OutcomeSucceeded, wantCalls: 1,
		},
		{
			name: "another subject's kill switch does not apply",
			setup: func(h *harness) {
				putJSON(t, h.control, KeyKillSwitch+"/other", KillSwitch{Subject: "other", Engaged: true, By: "bob", At: time.Now()})
			},
			req:         func() schemas.ActionRequest { return newRequest("poke", map[string]any{"key": "a"}) },
			wantOutcome: schemas.OutcomeSucceeded, wantCalls: 1,
		},
		{
			name:        "observe mode records what it would do",
			mode:        schemas.ModeObserve,
			req:         func() schemas.ActionRequest { return newRequest("poke", map[string]any{"key": "user:1"}) },
			wantOutcome: schemas.OutcomeSkipped, wantReason: `observe mode: would run poke{key=user:1} on fake/i1`,
			wantGates: "catalog=passed kill_switch=passed mode=refused",
		},
		{
			name:        "observe mode records what execute mode would refuse",
			mode:        schemas.ModeObserve,
			req:         func() schemas.ActionRequest { return newRequest("poke", map[string]any{"key": "*"}) },
			wantOutcome: schemas.OutcomeSkipped, wantReason: `observe mode: would not run poke{key=*} on fake/i1: precondition: target param "key": wildcard target`,
		},
		{
			name:        "observe mode notes approval",
			mode:        schemas.ModeObserve,
			req:         func() schemas.ActionRequest { return newRequest("nuke", map[string]any{"key": "a"}) },
			wantOutcome: schemas.OutcomeSkipped, wantReason: "observe mode: would run nuke{key=a} on fake/i1 after approval",
		},
		{
			name: "kill switch answers before observe mode",
			mode: schemas.ModeObserve,
			setup: func(h *harness) {
				putJSON(t, h.control, KeyKillSwitch, KillSwitch{Engaged: true, By: "alice", At: time.Now()})
			},
			req:         func() schemas.ActionRequest { return newRequest("poke", map[string]any{"key": "a"}) },
			wantOutcome: schemas.OutcomeRejected, wantReason: "kill switch",
		},
		{
			name:        "empty target is refused",
			req:         func() schemas.ActionRequest { return newRequest("poke", map[string]any{"key": ""}) },
			wantOutcome: schemas.OutcomeRejected, wantReason: `precondition: target param "key": empty target`,
		},
		{
			name:        "wildcard target is refused",
			req:         func() schemas.ActionRequest { return newRequest("poke", map[string]any{"key": "*"}) },
			wantOutcome: schemas.OutcomeRejected, wantReason: "precondition: target param \"key\": wildcard target",
			wantGates: "catalog=passed kill_switch=passed mode=passed precondition=refused",
		},
		{
			name:        "prefix pattern where a concrete key is needed is refused",
			req:         func() schemas.ActionRequest { return newRequest("poke", map[string]any{"key": "user:*"}) },
			wantOutcome: schemas.OutcomeRejected, wantReason: "wildcard target \"user:*\" where a concrete resource is required",
		},
		{
			name:        "bare star on a pattern target is refused",
			req:         func() schemas.ActionRequest { return newRequest("tune", map[string]any{"pattern": "*", "limit": 5}) },
			wantOutcome: schemas.OutcomeRejected, wantReason: "matches every resource",
		},
		{
			name: "prefix pattern on a pattern target executes",
			req: func() schemas.ActionRequest {
				return newRequest("tune", map[string]any{"pattern": "user:*", "limit": 5})
			},
			wantOutcome: schemas.OutcomeSucceeded, wantCalls: 1,
		},
		{
			name: "firing violation in the same episode executes",
			setup: func(h *harness) {
				putJSON(t, h.alerts, violation.Fingerprint, firing(violation.Fingerprint, "ep1"))
			},
			req: func() schemas.ActionRequest {
				r := newRequest("poke", map[string]any{"key": "a"})
				r.Violation = violation
				return r
			},
			wantOutcome: schemas.OutcomeSucceeded, wantCalls: 1,
		},
		{
			name: "resolved violation is skipped",
			setup: func(h *harness) {
				rec := firing(violation.Fingerprint, "ep1")
				rec.State = schemas.AlertResolved
				putJSON(t, h.alerts, violation.Fingerprint, rec)
			},
			req: func() schemas.ActionRequest {
				r := newRequest("poke", map[string]any{"key": "a"})
				r.Violation = violation
				return r
			},
			wantOutcome: schemas.OutcomeSkipped, wantReason: "precondition: violation fake/i1/r/k is resolved, no longer firing",
		},
		{
			name: "violation firing in a later episode is skipped",
			setup: func(h *harness) {
				putJSON(t, h.alerts, violation.Fingerprint, firing(violation.Fingerprint, "ep2"))
			},
			req: func() schemas.ActionRequest {
				r := newRequest("poke", map[string]any{"key": "a"})
				r.Violation = violation
				return r
			},
			wantOutcome: schemas.OutcomeSkipped, wantReason: "fires in episode ep2, not the request's episode ep1",
		},
		{
			name: "unknown violation is skipped",
			req: func() schemas.ActionRequest {
				r := newRequest("poke", map[string]any{"key": "a"})
				r.Violation = violation
				return r
			},
			wantOutcome: schemas.OutcomeSkipped, wantReason: "is not in the evaluator's state",
		},
		{
			name: "stale request is skipped",
			req: func() schemas.ActionRequest {
				r := newRequest("poke", map[string]any{"key": "a"})
				r.RequestedAt = time.Now().Add(-2 * time.Hour)
				return r
			},
			wantOutcome: schemas.OutcomeSkipped, wantReason: "precondition: stale request",
		},
		{
			name: "target in cooldown is rejected",
			setup: func(h *harness) {
				putJSON(t, h.control, budgetKey("fake"), recent(budgetEntry{RequestID: "earlier", Kind: chargeAction,
					Instance: "i1", Action: "poke", Target: "a", At: time.Now().Add(-time.Minute), CooldownUntil: time.Now().Add(time.Hour)}))
			},
			req:         func() schemas.ActionRequest { return newRequest("poke", map[string]any{"key": "a"}) },
			wantOutcome: schemas.OutcomeRejected, wantReason: "cooldown: poke on i1 target a ran at",
			wantGates: "catalog=passed kill_switch=passed mode=passed precondition=passed budget=refused",
		},
		{
			name: "cooldown is per target",
			setup: func(h *harness) {
				putJSON(t, h.control, budgetKey("fake"), recent(budgetEntry{RequestID: "earlier", Kind: chargeAction,
					Instance: "i1", Action: "poke", Target: "b", At: time.Now().Add(-time.Minute), CooldownUntil: time.Now().Add(time.Hour)}))
			},
			req:         func() schemas.ActionRequest { return newRequest("poke", map[string]any{"key": "a"}) },
			wantOutcome: schemas.OutcomeSucceeded, wantCalls: 1,
		},
		{
			name: "spent budget is rejected",
			setup: func(h *harness) {
				putJSON(t, h.control, budgetKey("fake"), recent(
					budgetEntry{RequestID: "e1", Kind: chargeAction, Instance: "i1", Action: "flush", At: time.Now().Add(-time.Minute)},
					budgetEntry{RequestID: "e2", Kind: chargeFailedVerification, Instance: "i1", Action: "flush", At: time.Now().Add(-time.Minute)},
					budgetEntry{RequestID: "e3", Kind: chargeAction, Instance: "i1", Action: "flush", At: time.Now().Add(-time.Minute)},
				))
			},
			req:         func() schemas.ActionRequest { return newRequest("poke", map[string]any{"key": "a"}) },
			wantOutcome: schemas.OutcomeRejected, wantReason: "budget: 3 of 3 actions on this subject used in the last 1h0m0s",
		},
		{
			name: "budget entries older than the window do not count",
			setup: func(h *harness) {
				old := time.Now().Add(-2 * time.Hour)
				putJSON(t, h.control, budgetKey("fake"), recent(
					budgetEntry{RequestID: "e1", Kind: chargeAction, Instance: "i1", Action: "flush", At: old},
					budgetEntry{RequestID: "e2", Kind: chargeAction, Instance: "i1", Action: "flush", At: old},
					budgetEntry{RequestID: "e3", Kind: chargeAction, Instance: "i1", Action: "flush", At: old},
				))
			},
			req:         func() schemas.ActionRequest { return newRequest("poke", map[string]any{"key": "a"}) },
			wantOutcome: schemas.OutcomeSucceeded, wantCalls: 1,
		},
		{
			name:        "action needing approval waits",
			req:         func() schemas.ActionRequest { return newRequest("nuke", map[string]any{"key": "a"}) },
			wantOutcome: schemas.OutcomeAwaitingApproval, wantReason: "high-risk action needs approval before",
			wantGates: "catalog=passed kill_switch=passed mode=passed precondition=passed budget=passed approval=held",
		},
		{
			name: "approval is not asked while the target cools down",
			setup: func(h *harness) {
				putJSON(t, h.control, budgetKey("fake"), recent(budgetEntry{RequestID: "earlier", Kind: chargeAction,
					Instance: "i1", Action: "nuke", Target: "a", At: time.Now(), CooldownUntil: time.Now().Add(time.Hour)}))
			},
			req:         func() schemas.ActionRequest { return newRequest("nuke", map[string]any{"key": "a"}) },
			wantOutcome: schemas.OutcomeRejected, wantReason: "cooldown",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			if tt.setup != nil {
				tt.setup(h)
			}
			mode := tt.mode
			if mode == "" {
				mode = schemas.ModeExecute
			}
			cfg := testConfig(mode)
			cfg.MaxActions = 3
			h.start(cfg, h.deps(h.exec))
			req := tt.req()
			h.publish(req)
			var res schemas.ActionResult
			if tt.wantOutcome == schemas.OutcomeAwaitingApproval {
				res = h.awaiting(req.ID)
			} else {
				res = h.result(req.ID)
			}
			if res.Outcome != tt.wantOutcome || !strings.Contains(res.Reason, tt.wantReason) {
				t.Errorf("outcome %s %q, want %s containing %q", res.Outcome, res.Reason, tt.wantOutcome, tt.wantReason)
			}
			if res.Mode != mode || res.RequestID != req.ID || res.Action != req.Action {
				t.Errorf("result %+v does not describe the request", res)
			}
			if tt.wantGates != "" {
				if got := gateDecisions(res.Gates); got != tt.wantGates {
					t.Errorf("gates %q, want %q", got, tt.wantGates)
				}
				if last := res.Gates[len(res.Gates)-1]; last.Decision != schemas.GatePassed && last.Reason != res.Reason {
					t.Errorf("the stopping gate says %q, the result %q", last.Reason, res.Reason)
				}
			}
			if got := h.exec.callsFor(req.ID); got != tt.wantCalls {
				t.Errorf("executor called %d times, want %d", got, tt.wantCalls)
			}
			if tt.wantOutcome != schemas.OutcomeAwaitingApproval {
				entry, err := ReadLedger(bustest.Context(t, 5*time.Second), h.ledger, req.ID)
				if err != nil || entry.State != LedgerDone || entry.Result == nil || entry.Result.Outcome != tt.wantOutcome {
					t.Errorf("ledger entry %+v, %v; want done with outcome %s", entry, err, tt.wantOutcome)
				}
			}
		})
	}
}

// gateDecisions renders gates as "gate=decision ...".
func gateDecisions(gates []schemas.GateDecision) string {
	parts := make([]string, len(gates))
	for i, g := range gates {
		parts[i] = g.Gate + "=" + g.Decision
	}
	return strings.Join(parts, " ")
}

// TestEvents checks the ids and the correlation chain of every event a
// request causes.
func TestEvents(t *testing.T) {
	h := newHarness(t)
	h.start(testConfig(schemas.ModeExecute), h.deps(h.exec))
	req := newRequest("poke", map[string]any{"key": "a"})
	req.Violation = &schemas.ViolationRef{Fingerprint: "fake/i1/r/k", Episode: "episode-7", Rule: "r", Key: "k"}
	putJSON(t, h.alerts, req.Violation.Fingerprint, firing(req.Violation.Fingerprint, "episode-7"))
	h.publish(req)
	res := h.result(req.ID)
	if res.Outcome != schemas.OutcomeSucceeded {
		t.Fatalf("outcome %s: %s", res.Outcome, res.Reason)
	}
	h.observe(`{"fixed":["a"]}`)
	if v := h.verification(req.ID); !v.Verified {
		t.Fatalf("not verified: %s", v.Reason)
	}
	for _, id := range []string{schemas.DeriveID(req.ID, "completed"), schemas.DeriveID(req.ID, "verified")} {
		e, _ := h.event(id)
		if got := schemas.Extension(e, schemas.ExtCorrelationID); got != "episode-7" {
			t.Errorf("%s: correlationid %q, want the episode", e.Type(), got)
		}
		if got := schemas.Extension(e, schemas.ExtCausationID); got != req.ID {
			t.Errorf("%s: causationid %q, want the request id", e.Type(), got)
		}
		if e.Source() != "/actuators/w1" || e.Subject() != "fake/i1" {
			t.Errorf("%s: source %q subject %q", e.Type(), e.Source(), e.Subject())
		}
	}
}

// TestRetries checks that transient errors are retried with backoff and
// permanent ones are not.
func TestRetries(t *testing.T) {
	tests := []struct {
		name         string
		fn           func(attempt int) error
		wantOutcome  string
		wantAttempts int
		wantReason   string
	}{
		{
			name:        "5xx then success is retried",
			fn:          func(attempt int) error { return map[bool]error{true: httpError{503}}[attempt < 3] },
			wantOutcome: schemas.OutcomeSucceeded, wantAttempts: 3, wantReason: "executed in 3 attempt(s)",
		},
		{
			name:        "4xx is not retried",
			fn:          func(int) error { return httpError{400} },
			wantOutcome: schemas.OutcomeFailed, wantAttempts: 1, wantReason: "permanent error, not retried: HTTP 400",
		},
		{
			name:        "unclassified error is not retried",
			fn:          func(int) error { return errors.New("boom") },
			wantOutcome: schemas.OutcomeFailed, wantAttempts: 1, wantReason: "permanent error",
		},
		{
			name:        "persistent 5xx gives up after max attempts",
			fn:          func(int) error { return httpError{500} },
			wantOutcome: schemas.OutcomeFailed, wantAttempts: 4, wantReason: "transient error, gave up after 4 attempts: HTTP 500",
		},
		{
			name:        "429 is retried",
			fn:          func(attempt int) error { return map[bool]error{true: httpError{429}}[attempt < 2] },
			wantOutcome: schemas.OutcomeSucceeded, wantAttempts: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.exec.fn = func(_ context.Context, _ schemas.ActionRequest, attempt int) (schemas.ActionResult, error) {
				return schemas.ActionResult{}, tt.fn(attempt)
			}
			cfg := testConfig(schemas.ModeExecute)
			cfg.MaxAttempts = 4
			h.start(cfg, h.deps(h.exec))
			req := newRequest("flush", nil)
			h.publish(req)
			res := h.result(req.ID)
			if res.Outcome != tt.wantOutcome || res.Attempts != tt.wantAttempts || !strings.Contains(res.Reason, tt.wantReason) {
				t.Errorf("got %s after %d attempts (%q); want %s after %d containing %q",
					res.Outcome, res.Attempts, res.Reason, tt.wantOutcome, tt.wantAttempts, tt.wantReason)
			}
			if got := h.exec.callsFor(req.ID); got != tt.wantAttempts {
				t.Errorf("executor called %d times, want %d", got, tt.wantAttempts)
			}
		})
	}
}

// TestAttemptTimeout checks that a hung subject is cut off by the attempt
// timeout and retried as transient.
func TestAttemptTimeout(t *testing.T) {
	h := newHarness(t)
	h.exec.fn = func(ctx context.Context, _ schemas.ActionRequest, attempt int) (schemas.ActionResult, error) {
		if attempt == 1 {
			<-ctx.Done()
			return schemas.ActionResult{}, ctx.Err()
		}
		return schemas.ActionResult{}, nil
	}
	cfg := testConfig(schemas.ModeExecute)
	cfg.ExecuteTimeout = 100 * time.Millisecond
	h.start(cfg, h.deps(h.exec))
	req := newRequest("poke", map[string]any{"key": "a"})
	h.publish(req)
	if res := h.result(req.ID); res.Outcome != schemas.OutcomeSucceeded || res.Attempts != 2 {
		t.Fatalf("got %s after %d attempts: %s", res.Outcome, res.Attempts, res.Reason)
	}
}

// TestKillSwitchStopsRetries checks that engaging the kill switch while an
// action is being retried stops the retries.
func TestKillSwitchStopsRetries(t *testing.T) {
	h := newHarness(t)
	h.exec.fn = func(ctx context.Context, _ schemas.ActionRequest, attempt int) (schemas.ActionResult, error) {
		if attempt == 1 {
			if err := SetKillSwitch(ctx, h.control, KillSwitch{Engaged: true, By: "alice", Reason: "stop", At: time.Now()}); err != nil {
				t.Error(err)
			}
		}
		return schemas.ActionResult{}, httpError{503}
	}
	cfg := testConfig(schemas.ModeExecute)
	cfg.MaxAttempts = 5
	h.start(cfg, h.deps(h.exec))
	req := newRequest("flush", nil)
	h.publish(req)
	res := h.result(req.ID)
	if res.Outcome != schemas.OutcomeFailed || res.Attempts != 1 || !strings.Contains(res.Reason, "kill switch was engaged") {
		t.Fatalf("got %s after %d attempts: %s", res.Outcome, res.Attempts, res.Reason)
	}
}

// TestDuplicateRequest checks that the same request delivered twice (a
// republish outside the dedup window) runs once and gets one result.
func TestDuplicateRequest(t *testing.T) {
	h := newHarness(t)
	h.start(testConfig(schemas.ModeExecute), h.deps(h.exec))
	req := newRequest("flush", nil)
	h.publish(req)
	first := h.result(req.ID)
	// Republish under another event id, as a replay after the dedup
	// window would.
	e, err := schemas.NewEvent(schemas.EventSpec{Type: schemas.TypeActionRequested, Source: "/test", Subject: "fake/i1",
		ID: req.ID + "-again", Time: time.Now()}, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.b.Publish(bustest.Context(t, 5*time.Second), "operator.action.requested.fake.i1", e); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, wait, func() bool {
		entry, err := ReadLedger(context.Background(), h.ledger, req.ID)
		return err == nil && entry.State == LedgerDone
	}, "ledger entry")
	// The second delivery republishes the same result id: JetStream keeps
	// one. Wait for the consumer to settle by sending a marker request.
	marker := newRequest("flush", nil)
	h.publish(marker)
	h.result(marker.ID)
	if got := h.exec.callsFor(req.ID); got != 1 {
		t.Fatalf("executed %d times, want 1", got)
	}
	if n := h.count(schemas.TypeActionCompleted, req.ID); n != 1 {
		t.Fatalf("%d completion events, want 1", n)
	}
	if first.Outcome != schemas.OutcomeSucceeded {
		t.Fatalf("outcome %s", first.Outcome)
	}
}

// TestCrashBetweenExecutionAndAck simulates a worker that dies after the
// subject's API was called: either before the result reached the ledger or
// after it did but before the result was published and the request acked.
// The request is redelivered to a second worker, which must not call the
// subject again.
func TestCrashBetweenExecutionAndAck(t *testing.T) {
	tests := []struct {
		name string
		// storeDies: the ledger write of the result fails (the process died
		// before it); otherwise only the publish and the ack are lost.
		storeDies   bool
		wantOutcome string
		wantReason  string
	}{
		{name: "before the result is recorded", storeDies: true, wantOutcome: schemas.OutcomeFailed,
			wantReason: "outcome unknown: w1 claimed the request"},
		{name: "after the result is recorded", storeDies: false, wantOutcome: schemas.OutcomeSucceeded,
			wantReason: "executed in 1 attempt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			ledger := &faultyStore{ControlStore: h.ledger}
			pub := &faultyBus{Bus: busAdapter{h.b}}
			crashed := make(chan struct{})
			h.exec.fn = func(context.Context, schemas.ActionRequest, int) (schemas.ActionResult, error) {
				// The subject has acted. Now the worker dies: nothing it
				// writes or publishes from here on arrives.
				ledger.tripped.Store(tt.storeDies)
				pub.tripped.Store(true)
				close(crashed)
				return schemas.ActionResult{}, nil
			}
			cfg := testConfig(schemas.ModeExecute)
			cfg.ExecuteTimeout = 300 * time.Millisecond
			cfg.MaxAttempts = 1
			cfg.LeaseMargin = 300 * time.Millisecond
			deps := h.deps(h.exec)
			deps.Bus, deps.Ledger = pub, ledger
			_, stop1 := h.start(cfg, deps)

			req := newRequest("poke", map[string]any{"key": "a"})
			h.publish(req)
			<-crashed
			stop1()

			// A second replica picks the redelivered request up.
			cfg2 := testConfig(schemas.ModeExecute)
			cfg2.WorkerID = "w2"
			second := &fakeExecutor{}
			h.start(cfg2, h.deps(second))
			res := h.result(req.ID)
			if res.Outcome != tt.wantOutcome || !strings.Contains(res.Reason, tt.wantReason) {
				t.Fatalf("outcome %s %q, want %s containing %q", res.Outcome, res.Reason, tt.wantOutcome, tt.wantReason)
			}
			if got := h.exec.callsFor(req.ID) + second.callsFor(req.ID); got != 1 {
				t.Fatalf("the subject was called %d times, want exactly 1", got)
			}
			if n := h.count(schemas.TypeActionCompleted, req.ID); n != 1 {
				t.Fatalf("%d completion events, want 1", n)
			}
		})
	}
}

// TestReplicasShareOneBudget runs two workers on separate connections with
// a budget of 3 and sends 10 requests on distinct targets at once: exactly
// 3 execute.
func TestReplicasShareOneBudget(t *testing.T) {
	h := newHarness(t)
	cfg := testConfig(schemas.ModeExecute)
	cfg.MaxActions = 3
	cfg.Per = time.Hour
	h.start(cfg, h.deps(h.exec))
	cfg2 := cfg
	cfg2.WorkerID = "w2"
	h.start(cfg2, h.secondConnection(h.exec))

	var ids []string
	for i := range 10 {
		req := newRequest("poke", map[string]any{"key": "k" + string(rune('a'+i))})
		ids = append(ids, req.ID)
		h.publish(req)
	}
	succeeded, rejected := 0, 0
	for _, id := range ids {
		res := h.result(id)
		switch {
		case res.Outcome == schemas.OutcomeSucceeded:
			succeeded++
		case res.Outcome == schemas.OutcomeRejected && strings.HasPrefix(res.Reason, "budget: 3 of 3"):
			rejected++
		default:
			t.Errorf("unexpected outcome %s: %s", res.Outcome, res.Reason)
		}
	}
	if succeeded != 3 || rejected != 7 || h.exec.totalCalls() != 3 {
		t.Fatalf("%d succeeded, %d rejected by budget, %d executions; want 3, 7, 3", succeeded, rejected, h.exec.totalCalls())
	}
	st, err := ReadStatus(bustest.Context(t, 5*time.Second), h.control, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Budgets) != 1 || st.Budgets[0].Used != 3 || st.Budgets[0].MaxActions != 3 || len(st.Budgets[0].Cooling) != 3 {
		t.Fatalf("status %+v", st.Budgets)
	}
}

// TestVerification checks both verification outcomes and that a failed one
// is charged to the budget.
func TestVerification(t *testing.T) {
	tests := []struct {
		name         string
		observations []string
		wantVerified bool
		wantReason   string
		wantObs      int
	}{
		{name: "holds on the first observation", observations: []string{`{"fixed":["a"]}`},
			wantVerified: true, wantReason: "verify held on the observation of", wantObs: 1},
		{name: "holds on a later observation", observations: []string{`{"fixed":[]}`, `{"fixed":["b"]}`, `{"fixed":["a","b"]}`},
			wantVerified: true, wantObs: 3},
		{name: "never holds", observations: []string{`{"fixed":["b"]}`, `{"fixed":["c"]}`},
			wantReason: "verify did not hold within 1s on 2 observation(s)", wantObs: 2},
		{name: "cannot be judged", observations: []string{`{"other":1}`},
			wantReason: "the last could not be judged: no such key: fixed", wantObs: 1},
		{name: "no observations", wantReason: "no observation of fake/i1 within 1s after the action"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			// An observation made before the action never verifies it.
			h.observe(`{"fixed":["a"]}`)
			reg := prometheus.NewRegistry()
			cfg := testConfig(schemas.ModeExecute)
			cfg.Registerer = reg
			w, _ := h.start(cfg, h.deps(h.exec))
			req := newRequest("poke", map[string]any{"key": "a"})
			h.publish(req)
			if res := h.result(req.ID); res.Outcome != schemas.OutcomeSucceeded {
				t.Fatalf("outcome %s: %s", res.Outcome, res.Reason)
			}
			for _, o := range tt.observations {
				h.observe(o)
			}
			v := h.verification(req.ID)
			if v.Verified != tt.wantVerified || !strings.Contains(v.Reason, tt.wantReason) || v.Observations != tt.wantObs {
				t.Fatalf("verified=%v after %d observations (%q); want %v after %d containing %q",
					v.Verified, v.Observations, v.Reason, tt.wantVerified, tt.wantObs, tt.wantReason)
			}
			if v.Expr != "params.key in obs.state.fixed" {
				t.Errorf("expr %q", v.Expr)
			}
			if tt.wantObs > 0 {
				var ev map[string]any
				if err := json.Unmarshal(v.Evidence, &ev); err != nil || ev["observation_id"] == nil || ev["state"] == nil {
					t.Errorf("evidence %s: %v", v.Evidence, err)
				}
			}
			if got := testutil.ToFloat64(w.metrics.verifications.WithLabelValues("fake", "poke", map[bool]string{true: "true", false: "false"}[tt.wantVerified])); got != 1 {
				t.Errorf("verifications metric %v, want 1", got)
			}
			var r budgetRecord
			if _, err := getJSON(context.Background(), h.control, budgetKey("fake"), &r); err != nil {
				t.Fatal(err)
			}
			if got := r.has(req.ID, chargeFailedVerification); got == tt.wantVerified {
				t.Errorf("failed verification charged: %v, want %v", got, !tt.wantVerified)
			}
			entry, err := ReadLedger(context.Background(), h.ledger, req.ID)
			if err != nil || entry.Verification == nil || entry.Verification.Verified != tt.wantVerified {
				t.Errorf("ledger verification %+v, %v", entry.Verification, err)
			}
		})
	}
}

// TestMetrics checks the request counter, the execution histogram and the
// budget gauge.
func TestMetrics(t *testing.T) {
	h := newHarness(t)
	reg := prometheus.NewRegistry()
	cfg := testConfig(schemas.ModeExecute)
	cfg.Registerer = reg
	cfg.MaxActions = 5
	h.start(cfg, h.deps(h.exec))
	ok := newRequest("poke", map[string]any{"key": "a"})
	bad := newRequest("poke", map[string]any{})
	h.publish(ok)
	h.publish(bad)
	h.result(ok.ID)
	h.result(bad.ID)
	want := `
# HELP operator_actuator_budget_remaining Actions a subject's budget still allows in the current window, as last seen by this worker.
# TYPE operator_actuator_budget_remaining gauge
operator_actuator_budget_remaining{subject="fake"} 4
# HELP operator_actuator_requests_total Action requests decided, by subject, action and outcome (succeeded, failed, rejected, skipped, awaiting_approval).
# TYPE operator_actuator_requests_total counter
operator_actuator_requests_total{action="poke",outcome="rejected",subject="fake"} 1
operator_actuator_requests_total{action="poke",outcome="succeeded",subject="fake"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "operator_actuator_requests_total", "operator_actuator_budget_remaining"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(reg, "operator_actuator_execution_duration_seconds"); n != 1 {
		t.Fatalf("%d execution histograms, want 1", n)
	}
}

func TestNewRefusesBadWiring(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name    string
		cfg     Config
		deps    func() Deps
		wantErr string
	}{
		{name: "no subjects", deps: func() Deps { d := h.deps(h.exec); d.Subjects = nil; return d }, wantErr: "at least one subject"},
		{name: "catalog for another subject", deps: func() Deps {
			d := h.deps(h.exec)
			d.Subjects = map[string]Subject{"other": d.Subjects["fake"]}
			return d
		}, wantErr: `is for subject "fake"`},
		{name: "execute mode without executor", cfg: Config{Mode: schemas.ModeExecute}, deps: func() Deps { return h.deps(nil) },
			wantErr: "execute mode needs an executor"},
		{name: "bad mode", cfg: Config{Mode: "yolo"}, deps: func() Deps { return h.deps(h.exec) }, wantErr: `mode "yolo"`},
		{name: "negative budget", cfg: Config{MaxActions: -1}, deps: func() Deps { return h.deps(h.exec) }, wantErr: "max_actions -1"},
		{name: "no stores", deps: func() Deps { d := h.deps(h.exec); d.Ledger = nil; return d }, wantErr: "needs a bus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, tt.deps())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New: %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
	if _, err := New(Config{}, h.deps(nil)); err != nil {
		t.Fatalf("observe mode without executor: %v", err)
	}
}
