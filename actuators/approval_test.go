package actuators

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/operator-dev/operator/internal/bus/bustest"
	"github.com/operator-dev/operator/schemas"
)

// pendingApproval sends a request that needs approval and waits until it is
// held.
func (h *harness) pendingApproval(params map[string]any, mutate ...func(*schemas.ActionRequest)) schemas.ActionRequest {
	h.t.Helper()
	req := newRequest("nuke", params)
	for _, m := range mutate {
		m(&req)
	}
	h.publish(req)
	if res := h.awaiting(req.ID); res.Outcome != schemas.OutcomeAwaitingApproval {
		h.t.Fatalf("outcome %s: %s", res.Outcome, res.Reason)
	}
	return req
}

func (h *harness) approval(id string) Approval {
	h.t.Helper()
	var a Approval
	found, err := getJSON(context.Background(), h.control, approvalKey(id), &a)
	if err != nil || !found {
		h.t.Fatalf("approval %s: found=%v err=%v", id, found, err)
	}
	return a
}

func (h *harness) decide(id string, d Decision, now time.Time) (Approval, error) {
	h.t.Helper()
	if d.By == "" {
		d.By = "alice"
	}
	d.Source = "/cli/test"
	return Decide(bustest.Context(h.t, 10*time.Second), h.control, h.b, h.b.Subjects(), id, d, now)
}

// TestApproval walks requests that need approval through every decision.
// The point of each case: what the person's command promises is what the
// worker then does.
func TestApproval(t *testing.T) {
	violation := &schemas.ViolationRef{Fingerprint: "fake/i1/r/k", Episode: "ep1", Rule: "r", Key: "k"}
	tests := []struct {
		name string
		ttl  time.Duration
		// act decides (or not) after the request is held; it returns the
		// error Decide returned.
		act         func(h *harness, req schemas.ActionRequest) error
		wantErr     error
		wantOutcome string
		wantReason  string
		wantCalls   int
		// wantGates, when set, is every gate's decision in order.
		wantGates string
	}{
		{
			name: "approved request executes",
			act: func(h *harness, req schemas.ActionRequest) error {
				_, err := h.decide(req.ID, Decision{Approve: true, Reason: "looks right"}, time.Now())
				return err
			},
			wantOutcome: schemas.OutcomeSucceeded, wantCalls: 1,
			wantGates: "catalog=passed kill_switch=passed mode=passed precondition=passed budget=passed approval=passed ledger=passed",
		},
		{
			name: "approving twice executes once",
			act: func(h *harness, req schemas.ActionRequest) error {
				if _, err := h.decide(req.ID, Decision{Approve: true}, time.Now()); err != nil {
					return err
				}
				h.result(req.ID)
				_, err := h.decide(req.ID, Decision{Approve: true}, time.Now())
				return err
			},
			wantOutcome: schemas.OutcomeSucceeded, wantCalls: 1,
		},
		{
			name: "rejected request is recorded as rejected",
			act: func(h *harness, req schemas.ActionRequest) error {
				_, err := h.decide(req.ID, Decision{By: "bob", Reason: "wrong key"}, time.Now())
				return err
			},
			wantOutcome: schemas.OutcomeRejected, wantReason: "rejected by bob: wrong key",
			wantGates: "catalog=passed kill_switch=passed mode=passed precondition=passed budget=passed approval=refused",
		},
		{
			name: "nobody decides: the sweep expires it",
			ttl:  200 * time.Millisecond,
			act:  func(*harness, schemas.ActionRequest) error { return nil },
			// The sweep marks it expired, the worker records it.
			wantOutcome: schemas.OutcomeRejected, wantReason: "approval expired: no decision before",
		},
		{
			name: "approving after the deadline fails and records the expiry",
			ttl:  time.Hour,
			act: func(h *harness, req schemas.ActionRequest) error {
				_, err := h.decide(req.ID, Decision{Approve: true}, time.Now().Add(2*time.Hour))
				return err
			},
			wantErr:     ErrApprovalExpired,
			wantOutcome: schemas.OutcomeRejected, wantReason: "approval expired",
		},
		{
			name: "approved request whose violation resolved meanwhile is skipped",
			act: func(h *harness, req schemas.ActionRequest) error {
				rec := firing(violation.Fingerprint, "ep1")
				rec.State = schemas.AlertResolved
				putJSON(t, h.alerts, violation.Fingerprint, rec)
				_, err := h.decide(req.ID, Decision{Approve: true}, time.Now())
				return err
			},
			wantOutcome: schemas.OutcomeSkipped, wantReason: "precondition: violation fake/i1/r/k is resolved",
		},
		{
			name: "approved request meets the kill switch",
			act: func(h *harness, req schemas.ActionRequest) error {
				if err := SetKillSwitch(context.Background(), h.control, KillSwitch{Engaged: true, By: "carol", At: time.Now()}); err != nil {
					return err
				}
				_, err := h.decide(req.ID, Decision{Approve: true}, time.Now())
				return err
			},
			wantOutcome: schemas.OutcomeRejected, wantReason: "kill switch engaged",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			cfg := testConfig(schemas.ModeExecute)
			cfg.ApprovalTTL = tt.ttl
			if tt.ttl == 0 || tt.ttl == time.Hour {
				cfg.SweepInterval = time.Hour // only the decision acts
			}
			h.start(cfg, h.deps(h.exec))
			putJSON(t, h.alerts, violation.Fingerprint, firing(violation.Fingerprint, "ep1"))
			req := h.pendingApproval(map[string]any{"key": "a"}, func(r *schemas.ActionRequest) { r.Violation = violation })
			if got := h.approval(req.ID); got.State != ApprovalPending || got.Risk != RiskHigh || got.CorrelationID != "ep1" {
				t.Fatalf("approval record %+v", got)
			}
			if n := h.exec.callsFor(req.ID); n != 0 {
				t.Fatalf("executed %d times before approval", n)
			}
			err := tt.act(h, req)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("decision error %v, want %v", err, tt.wantErr)
			}
			res := h.result(req.ID)
			if res.Outcome != tt.wantOutcome || !strings.Contains(res.Reason, tt.wantReason) {
				t.Fatalf("outcome %s %q, want %s containing %q", res.Outcome, res.Reason, tt.wantOutcome, tt.wantReason)
			}
			if got := h.exec.callsFor(req.ID); got != tt.wantCalls {
				t.Fatalf("executed %d times, want %d", got, tt.wantCalls)
			}
			if got := gateDecisions(res.Gates); tt.wantGates != "" && got != tt.wantGates {
				t.Errorf("gates %q, want %q", got, tt.wantGates)
			}
			// The resubmission carries the request's correlation and is
			// caused by it.
			if e, ok := h.event(schemas.DeriveID(req.ID, "decision")); ok {
				if schemas.Extension(e, schemas.ExtCorrelationID) != "ep1" || schemas.Extension(e, schemas.ExtCausationID) != req.ID {
					t.Errorf("resubmission extensions %v", e.Extensions())
				}
			} else {
				t.Errorf("no resubmission event")
			}
		})
	}
}

func TestDecideRefusals(t *testing.T) {
	h := newHarness(t)
	cfg := testConfig(schemas.ModeExecute)
	cfg.SweepInterval = time.Hour
	h.start(cfg, h.deps(h.exec))
	req := h.pendingApproval(map[string]any{"key": "a"})

	if _, err := h.decide("no-such-request", Decision{Approve: true}, time.Now()); !errors.Is(err, ErrNoApproval) {
		t.Errorf("unknown id: %v", err)
	}
	if _, err := h.decide(req.ID, Decision{}, time.Now()); err == nil || !strings.Contains(err.Error(), "needs a reason") {
		t.Errorf("rejection without reason: %v", err)
	}
	if _, err := Decide(context.Background(), h.control, h.b, h.b.Subjects(), req.ID, Decision{Approve: true}, time.Now()); err == nil {
		t.Errorf("decision without a name accepted")
	}
	if _, err := h.decide(req.ID, Decision{Reason: "no"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := h.decide(req.ID, Decision{Approve: true}, time.Now()); !errors.Is(err, ErrAlreadyDecided) {
		t.Errorf("approve after reject: %v", err)
	}
	if res := h.result(req.ID); res.Outcome != schemas.OutcomeRejected || h.exec.totalCalls() != 0 {
		t.Errorf("outcome %s with %d executions", res.Outcome, h.exec.totalCalls())
	}

	id, err := ResolveApprovalID(context.Background(), h.control, req.ID[:10])
	if err != nil || id != req.ID {
		t.Errorf("resolve prefix: %q, %v", id, err)
	}
	if _, err := ResolveApprovalID(context.Background(), h.control, "req-"); err != nil {
		t.Errorf("resolve unique prefix: %v", err)
	}
	h.pendingApproval(map[string]any{"key": "b"})
	if _, err := ResolveApprovalID(context.Background(), h.control, "req-"); !errors.Is(err, ErrAmbiguousID) {
		t.Errorf("ambiguous prefix: %v", err)
	}
}

// TestApprovalLapses checks that an approval given long before the request
// reaches a worker no longer counts.
func TestApprovalLapses(t *testing.T) {
	h := newHarness(t)
	cfg := testConfig(schemas.ModeExecute)
	cfg.SweepInterval = time.Hour
	req := newRequest("nuke", map[string]any{"key": "a"})
	past := time.Now().Add(-3 * time.Hour)
	putJSON(t, h.control, approvalKey(req.ID), Approval{RequestID: req.ID, State: ApprovalApproved, Request: req,
		RequestedAt: past, ExpiresAt: past.Add(time.Hour), DecidedBy: "alice", DecidedAt: past.Add(time.Minute)})
	h.start(cfg, h.deps(h.exec))
	h.publish(req)
	res := h.result(req.ID)
	if res.Outcome != schemas.OutcomeRejected || !strings.Contains(res.Reason, "approval by alice expired") {
		t.Fatalf("outcome %s %q", res.Outcome, res.Reason)
	}
	if h.exec.totalCalls() != 0 {
		t.Fatal("executed on a lapsed approval")
	}
}

// TestSweepDeletesOldDecisions checks that decided approval records are
// removed after the retention period, and pending ones are kept.
func TestSweepDeletesOldDecisions(t *testing.T) {
	h := newHarness(t)
	w, err := New(testConfig(schemas.ModeExecute), h.deps(h.exec))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	old := Approval{RequestID: "old", State: ApprovalRejected, Request: newRequest("nuke", map[string]any{"key": "a"}),
		RequestedAt: now.Add(-30 * 24 * time.Hour), DecidedAt: now.Add(-30 * 24 * time.Hour)}
	fresh := Approval{RequestID: "fresh", State: ApprovalPending, Request: newRequest("nuke", map[string]any{"key": "b"}),
		RequestedAt: now, ExpiresAt: now.Add(time.Hour)}
	putJSON(t, h.control, approvalKey("old"), old)
	putJSON(t, h.control, approvalKey("fresh"), fresh)
	if err := w.sweep(context.Background(), now); err != nil {
		t.Fatal(err)
	}
	list, err := ListApprovals(context.Background(), h.control)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].RequestID != "fresh" {
		b, _ := json.Marshal(list)
		t.Fatalf("approvals after sweep: %s", b)
	}
}
