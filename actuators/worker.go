package actuators

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"golang.org/x/sync/errgroup"

	"github.com/operator-dev/operator/schemas"
)

// A Worker consumes action requests for its subjects, runs each through the
// safety gates, executes what passes at most once, publishes the results
// and verifies succeeded actions against the subject's observations.
// Several workers (replicas) may run against one bus: they share one durable
// consumer per subject, one budget per subject, and the ledger.
type Worker struct {
	cfg      Config
	deps     Deps
	log      *slog.Logger
	subjects schemas.Subjects
	budgets  budgets
	metrics  *metrics
	source   string

	mu sync.Mutex
	// inflight holds the request ids this worker is executing.
	inflight map[string]bool
	// unrecorded holds results this worker executed but could not write to
	// the ledger yet, with the claim's revision, so a redelivery records
	// them instead of declaring the outcome unknown.
	unrecorded map[string]unrecordedResult
}

type unrecordedResult struct {
	entry LedgerEntry
	rev   uint64
}

// New checks cfg and deps and returns a worker; Run starts it.
func New(cfg Config, deps Deps) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("actuator config: %w", err)
	}
	cfg = cfg.withDefaults()
	var errs []error
	if deps.Bus == nil || deps.Alerts == nil || deps.Ledger == nil || deps.Control == nil {
		errs = append(errs, errors.New("actuator needs a bus and the evaluator state, ledger and control buckets"))
	}
	if len(deps.Subjects) == 0 {
		errs = append(errs, errors.New("actuator needs at least one subject"))
	}
	for name, s := range deps.Subjects {
		switch {
		case s.Catalog == nil:
			errs = append(errs, fmt.Errorf("subject %s: no catalog", name))
		case s.Catalog.Subject != name:
			errs = append(errs, fmt.Errorf("subject %s: its catalog %s is for subject %q", name, s.Catalog.File, s.Catalog.Subject))
		}
		if s.Executor == nil && cfg.Mode == schemas.ModeExecute {
			errs = append(errs, fmt.Errorf("subject %s: execute mode needs an executor (is its endpoint configured?)", name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Worker{
		cfg:        cfg,
		deps:       deps,
		log:        cfg.Logger.With("worker", cfg.WorkerID, "mode", cfg.Mode),
		subjects:   schemas.Subjects{Prefix: cfg.SubjectPrefix},
		budgets:    budgets{control: deps.Control, limits: limits{max: cfg.MaxActions, per: cfg.Per}},
		metrics:    newMetrics(cfg.Registerer),
		source:     "/actuators/" + cfg.WorkerID,
		inflight:   map[string]bool{},
		unrecorded: map[string]unrecordedResult{},
	}, nil
}

// Run consumes requests and completions of every subject and sweeps expired
// approvals until ctx is done. Then it drains: executions in flight finish
// and are recorded, verifications in flight are handed back to the stream
// (another replica or the next start resumes them with the same deadline).
// It returns after every goroutine it started has exited; an error means a
// consumer could not start or stopped on its own.
func (w *Worker) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	prefix := w.cfg.SubjectPrefix
	if prefix == "" {
		prefix = schemas.DefaultPrefix
	}
	for _, name := range w.subjectNames() {
		filter, err := w.subjects.ActionRequests(name)
		if err != nil {
			return err
		}
		cat := w.deps.Subjects[name].Catalog
		reqSpec := ConsumerSpec{
			Stream: schemas.StreamActions, Name: "actuator_" + name,
			Description: "action requests for " + name,
			Filter:      filter,
			MaxDeliver:  w.cfg.MaxDeliver, AckWait: w.cfg.AckWait, Backoff: w.cfg.Redelivery,
			Workers:       w.cfg.Concurrency,
			HandleTimeout: w.handleTimeout(cat),
		}
		g.Go(func() error { return w.deps.Bus.Consume(gctx, reqSpec, w.handleRequest) })

		verifySpec := ConsumerSpec{
			Stream: schemas.StreamActions, Name: "actuator_verify_" + name,
			Description: "verification of succeeded " + name + " actions",
			Filter:      prefix + ".action.completed." + name + ".>",
			MaxDeliver:  w.cfg.MaxDeliver, AckWait: w.cfg.AckWait, Backoff: w.cfg.Redelivery,
			Workers:       w.cfg.VerifyConcurrency,
			HandleTimeout: maxVerifyWithin(cat) + w.cfg.VerifyGrace + time.Minute,
		}
		g.Go(func() error {
			return w.deps.Bus.Consume(gctx, verifySpec, func(hctx context.Context, d *Delivery) error {
				return w.handleCompleted(hctx, gctx, d)
			})
		})
	}
	g.Go(func() error { return w.sweepLoop(gctx) })
	err := g.Wait()
	if ctx.Err() != nil {
		return nil // stopped, possibly while a consumer was still being declared
	}
	return err
}

func (w *Worker) subjectNames() []string {
	names := make([]string, 0, len(w.deps.Subjects))
	for n := range w.deps.Subjects {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func maxVerifyWithin(c *Catalog) time.Duration {
	var d time.Duration
	for _, a := range c.Actions {
		d = max(d, a.VerifyWithin)
	}
	return d
}

// attemptTimeout is the timeout of one attempt at a.
func (w *Worker) attemptTimeout(a *Action) time.Duration {
	if a.Timeout > 0 {
		return a.Timeout
	}
	return w.cfg.ExecuteTimeout
}

// maxExecution is the longest an execution with the given attempt timeout
// can take: every attempt timing out, with every backoff between them.
func (w *Worker) maxExecution(timeout time.Duration) time.Duration {
	total := time.Duration(w.cfg.MaxAttempts) * timeout
	b := w.cfg.RetryBackoff
	for i := 1; i < w.cfg.MaxAttempts; i++ {
		total += b
		b = min(2*b, w.cfg.MaxRetryBackoff)
	}
	return total
}

// handleTimeout bounds one request handler: the longest execution of the
// catalog plus half the lease margin, so a handler always ends before its
// ledger claim's lease.
func (w *Worker) handleTimeout(c *Catalog) time.Duration {
	var longest time.Duration
	for _, a := range c.Actions {
		longest = max(longest, w.maxExecution(w.attemptTimeout(a)))
	}
	return longest + w.cfg.LeaseMargin/2
}

// errLeaseHeld: another delivery of the request is executing it.
var errLeaseHeld = errors.New("request is being executed")

// leaseHeldError is errLeaseHeld with the end of the lease.
type leaseHeldError struct {
	msg   string
	until time.Time
}

func (e *leaseHeldError) Error() string        { return e.msg }
func (e *leaseHeldError) Is(target error) bool { return target == errLeaseHeld }

// waitFor waits d while telling the server the message is in progress
// every interval; it fails when ctx ends first.
func waitFor(ctx context.Context, m *Delivery, d, interval time.Duration) error {
	stop := keepAlive(ctx, m, interval)
	defer stop()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// verdict is the gates' answer for one request: an outcome with its reason,
// or (empty outcome) go ahead and execute.
type verdict struct {
	outcome string
	reason  string
	// approvalCreated is set when the request was just put on hold.
	approvalCreated bool
	// gates are the gates' answers so far, in order.
	gates  []schemas.GateDecision
	sub    Subject
	action *Action
	target string
}

// handleRequest is the request consumer's handler: the consumer loop, so it
// reads the clock once and passes the time to the gates.
func (w *Worker) handleRequest(ctx context.Context, m *Delivery) error {
	now := time.Now()
	var req schemas.ActionRequest
	if err := json.Unmarshal(m.Event.Data(), &req); err != nil {
		return permanent(fmt.Errorf("decode action request: %w", err))
	}
	corr := correlationOf(m.Event, req)
	log := w.log.With("event_id", m.Event.ID(), "request_id", req.ID, "subject", req.Subject,
		"instance", req.Instance, "action", req.Action, "correlation_id", corr)

	for {
		done, err := w.replayIfRecorded(ctx, req, corr, now, log)
		var held *leaseHeldError
		if errors.As(err, &held) {
			// Another delivery holds the claim: wait here, signalling
			// progress, until it records a result or its lease ends,
			// rather than burning redeliveries.
			if werr := waitFor(ctx, m, min(max(time.Until(held.until), 10*time.Millisecond), time.Second), w.cfg.AckWait/3); werr != nil {
				return err
			}
			now = time.Now()
			continue
		}
		if done || err != nil {
			return w.retryOrGiveUp(ctx, m, req, corr, err, now, log)
		}
		break
	}
	v, err := w.gate(ctx, req, corr, now)
	if err != nil {
		return w.retryOrGiveUp(ctx, m, req, corr, err, now, log)
	}
	if v.outcome != "" {
		return w.retryOrGiveUp(ctx, m, req, corr, w.conclude(ctx, req, corr, v, now, log), now, log)
	}
	return w.retryOrGiveUp(ctx, m, req, corr, w.execute(ctx, m, req, corr, v, now, log), now, log)
}

// retryOrGiveUp passes a handler error on for redelivery, except on the
// last delivery, where the request is recorded as failed so it never ends
// without a result. A request another delivery is executing is never
// failed here.
func (w *Worker) retryOrGiveUp(ctx context.Context, m *Delivery, req schemas.ActionRequest, corr string, err error, now time.Time, log *slog.Logger) error {
	if err == nil || errors.Is(err, schemas.ErrPermanent) || errors.Is(err, errLeaseHeld) {
		return err
	}
	if m.NumDelivered < uint64(w.cfg.MaxDeliver) {
		log.Warn("request not handled; will retry", "delivery", m.NumDelivered, "error", err)
		return err
	}
	v := verdict{outcome: schemas.OutcomeFailed,
		reason: fmt.Sprintf("gave up after %d deliveries: %v", m.NumDelivered, err)}
	if cerr := w.conclude(ctx, req, corr, v, now, log); cerr != nil {
		return fmt.Errorf("%w (and recording the failure: %v)", err, cerr)
	}
	return nil
}

// correlationOf is the correlation id of everything a request causes: the
// request's own correlationid, else its violation's episode, else its id.
func correlationOf(e event.Event, req schemas.ActionRequest) string {
	if c := schemas.Extension(e, schemas.ExtCorrelationID); c != "" {
		return c
	}
	if req.Violation != nil && req.Violation.Episode != "" {
		return req.Violation.Episode
	}
	return req.ID
}

// gate runs the safety gates in their fixed order at time now: catalog and
// params, kill switch, mode, precondition, cooldown and budget, approval.
// It returns an outcome that stops the request, or an empty outcome once
// the budget is reserved and the request may execute. An error means a gate
// could not decide (a store could not be read); the request is retried.
func (w *Worker) gate(ctx context.Context, req schemas.ActionRequest, corr string, now time.Time) (verdict, error) {
	var v verdict
	pass := func(gate, reason string) {
		v.gates = append(v.gates, schemas.GateDecision{Gate: gate, Decision: schemas.GatePassed, Reason: reason})
	}
	// stop ends the request at gate; an outcome awaiting approval holds it.
	stop := func(v verdict, gate, outcome, format string, args ...any) (verdict, error) {
		v.outcome, v.reason = outcome, fmt.Sprintf(format, args...)
		decision := schemas.GateRefused
		if outcome == schemas.OutcomeAwaitingApproval {
			decision = schemas.GateHeld
		}
		v.gates = append(v.gates, schemas.GateDecision{Gate: gate, Decision: decision, Reason: v.reason})
		return v, nil
	}
	// 1. Catalog and params.
	sub, ok := w.deps.Subjects[req.Subject]
	if !ok {
		return stop(v, schemas.GateCatalog, schemas.OutcomeRejected, "catalog: this worker has no action catalog for subject %q", req.Subject)
	}
	a, ok := sub.Catalog.Action(req.Action)
	if !ok {
		names := make([]string, len(sub.Catalog.Actions))
		for i, x := range sub.Catalog.Actions {
			names[i] = x.Name
		}
		return stop(v, schemas.GateCatalog, schemas.OutcomeRejected, "catalog: unknown action %q for %s (known: %s)", req.Action, req.Subject, strings.Join(names, ", "))
	}
	v.sub, v.action = sub, a
	if err := a.ValidateParams(req.Params); err != nil {
		return stop(v, schemas.GateCatalog, schemas.OutcomeRejected, "invalid params: %v", err)
	}
	pass(schemas.GateCatalog, fmt.Sprintf("%s-risk action %s with valid params", a.Risk, a.Name))
	// 2. Kill switch.
	ks, err := engagedKillSwitch(ctx, w.deps.Control, req.Subject)
	if err != nil {
		return v, err
	}
	if ks != nil {
		scope := "all subjects"
		if ks.Subject != "" {
			scope = ks.Subject
		}
		return stop(v, schemas.GateKillSwitch, schemas.OutcomeRejected, "kill switch engaged for %s by %s at %s: %s", scope, ks.By,
			ks.At.UTC().Format(time.RFC3339), orNone(ks.Reason))
	}
	pass(schemas.GateKillSwitch, "released")
	// 3. Mode. Observe mode runs the read-only part of the next gates, so
	// what it records is what execute mode would do.
	if w.cfg.Mode != schemas.ModeExecute {
		what := fmt.Sprintf("%s%s on %s/%s", a.Name, schemas.FormatParams(req.Params), req.Subject, req.Instance)
		_, _, reason, _, err := w.checkPreconditions(ctx, req, a, now)
		switch {
		case err != nil:
			return stop(v, schemas.GateMode, schemas.OutcomeSkipped, "observe mode: would run %s (later gates not checked: %v)", what, err)
		case reason != "":
			return stop(v, schemas.GateMode, schemas.OutcomeSkipped, "observe mode: would not run %s: %s", what, reason)
		case a.RequiresApproval:
			return stop(v, schemas.GateMode, schemas.OutcomeSkipped, "observe mode: would run %s after approval", what)
		}
		return stop(v, schemas.GateMode, schemas.OutcomeSkipped, "observe mode: would run %s", what)
	}
	pass(schemas.GateMode, "execute")
	// 4. and 5. Precondition, cooldown and budget (a check; the budget is
	// charged once approval, if needed, is given).
	gate, outcome, reason, target, err := w.checkPreconditions(ctx, req, a, now)
	if err != nil {
		return v, err
	}
	if outcome != "" {
		if gate == schemas.GateBudget {
			pass(schemas.GatePrecondition, "")
		}
		return stop(v, gate, outcome, "%s", reason)
	}
	pass(schemas.GatePrecondition, "")
	pass(schemas.GateBudget, "")
	v.target = target
	entry := budgetEntry{RequestID: req.ID, Kind: chargeAction, Instance: req.Instance, Action: a.Name, Target: target}
	// 6. Approval.
	if a.RequiresApproval {
		outcome, reason, created, err := w.approval(ctx, req, corr, a, now)
		if err != nil {
			return v, err
		}
		if outcome != "" {
			v.approvalCreated = created
			return stop(v, schemas.GateApproval, outcome, "%s", reason)
		}
		pass(schemas.GateApproval, "approved")
	} else {
		pass(schemas.GateApproval, "not required")
	}
	// The charge re-checks cooldown and budget by compare-and-swap, so
	// replicas admitting concurrently never overspend.
	refusal, remaining, err := w.budgets.reserve(ctx, req.Subject, entry, a.Cooldown, now)
	if err != nil {
		return v, err
	}
	w.metrics.budget.WithLabelValues(req.Subject).Set(float64(remaining))
	if refusal != "" {
		return stop(v, schemas.GateBudget, schemas.OutcomeRejected, "%s", refusal)
	}
	return v, nil
}

// checkPreconditions runs gates 4 and 5 without changing anything: the
// target is concrete, the request is fresh, its violation still fires in
// the same episode, the target is not cooling down and the subject's budget
// has room. It returns the gate, outcome and reason of the first that
// refuses.
func (w *Worker) checkPreconditions(ctx context.Context, req schemas.ActionRequest, a *Action, now time.Time) (gate, outcome, reason, target string, err error) {
	target, err = a.TargetOf(req.Params)
	if err != nil {
		return schemas.GatePrecondition, schemas.OutcomeRejected, fmt.Sprintf("precondition: %v", err), "", nil
	}
	if age := now.Sub(req.RequestedAt); !a.RequiresApproval && age > w.cfg.MaxRequestAge {
		return schemas.GatePrecondition, schemas.OutcomeSkipped, fmt.Sprintf("precondition: stale request: made at %s, %s ago (max %s)",
			req.RequestedAt.UTC().Format(time.RFC3339), age.Round(time.Second), w.cfg.MaxRequestAge), target, nil
	}
	if req.Violation != nil {
		refusal, err := w.violationFiring(ctx, *req.Violation)
		if err != nil {
			return "", "", "", target, err
		}
		if refusal != "" {
			return schemas.GatePrecondition, schemas.OutcomeSkipped, "precondition: " + refusal, target, nil
		}
	}
	entry := budgetEntry{RequestID: req.ID, Kind: chargeAction, Instance: req.Instance, Action: a.Name, Target: target}
	refusal, remaining, err := w.budgets.check(ctx, req.Subject, entry, a.Cooldown, now)
	if err != nil {
		return "", "", "", target, err
	}
	w.metrics.budget.WithLabelValues(req.Subject).Set(float64(remaining))
	if refusal != "" {
		return schemas.GateBudget, schemas.OutcomeRejected, refusal, target, nil
	}
	return "", "", "", target, nil
}

// violationFiring reports why the violation behind a request no longer
// justifies it, or "" when it is still firing in the same episode.
func (w *Worker) violationFiring(ctx context.Context, ref schemas.ViolationRef) (string, error) {
	var rec schemas.AlertRecord
	found, err := getJSON(ctx, w.deps.Alerts, ref.Fingerprint, &rec)
	if err != nil {
		return "", fmt.Errorf("read violation state: %w", err)
	}
	switch {
	case !found:
		return fmt.Sprintf("violation %s is not in the evaluator's state", ref.Fingerprint), nil
	case rec.State != schemas.AlertFiring:
		return fmt.Sprintf("violation %s is %s, no longer firing", ref.Fingerprint, rec.State), nil
	case rec.Episode != ref.Episode:
		return fmt.Sprintf("violation %s fires in episode %s, not the request's episode %s", ref.Fingerprint, rec.Episode, ref.Episode), nil
	}
	return "", nil
}

// approval is the approval gate. It returns "" when the request is approved
// and the approval still good, or the outcome that holds or stops it; created
// is set when the request was just put on hold.
func (w *Worker) approval(ctx context.Context, req schemas.ActionRequest, corr string, a *Action, now time.Time) (outcome, reason string, created bool, err error) {
	hint := fmt.Sprintf("operator approve %s | operator reject %s --reason ...", req.ID, req.ID)
	err = casLoop(ctx, w.deps.Control, approvalKey(req.ID), func(cur []byte, found bool) ([]byte, error) {
		created = false
		if !found {
			rec := Approval{RequestID: req.ID, State: ApprovalPending, Request: req, CorrelationID: corr, Risk: a.Risk,
				RequestedAt: now, ExpiresAt: now.Add(w.cfg.ApprovalTTL)}
			outcome, created = schemas.OutcomeAwaitingApproval, true
			reason = fmt.Sprintf("%s-risk action needs approval before %s: %s", a.Risk, rec.ExpiresAt.UTC().Format(time.RFC3339), hint)
			return json.Marshal(rec)
		}
		var rec Approval
		if err := json.Unmarshal(cur, &rec); err != nil {
			return nil, fmt.Errorf("decode approval %s: %w", req.ID, err)
		}
		expiry := rec.ExpiresAt.UTC().Format(time.RFC3339)
		switch rec.State {
		case ApprovalPending:
			if now.After(rec.ExpiresAt) {
				rec.State, rec.DecidedAt, rec.DecidedBy = ApprovalExpired, now, "/actuators/"+w.cfg.WorkerID
				rec.Reason = "no decision before " + expiry
				outcome, reason = schemas.OutcomeRejected, "approval expired: no decision before "+expiry
				return json.Marshal(rec)
			}
			outcome = schemas.OutcomeAwaitingApproval
			reason = fmt.Sprintf("%s-risk action needs approval before %s: %s", a.Risk, expiry, hint)
		case ApprovalApproved:
			if now.After(rec.ExpiresAt) {
				outcome, reason = schemas.OutcomeRejected, fmt.Sprintf("approval by %s expired at %s before the action could start", rec.DecidedBy, expiry)
			} else {
				outcome, reason = "", ""
			}
		case ApprovalRejected:
			outcome, reason = schemas.OutcomeRejected, fmt.Sprintf("rejected by %s: %s", rec.DecidedBy, orNone(rec.Reason))
		case ApprovalExpired:
			outcome, reason = schemas.OutcomeRejected, "approval expired: "+orNone(rec.Reason)
		default:
			return nil, fmt.Errorf("approval %s has unknown state %q", req.ID, rec.State)
		}
		return nil, errUnchanged
	})
	if err != nil {
		return "", "", false, fmt.Errorf("approval: %w", err)
	}
	return outcome, reason, created, nil
}

// replayIfRecorded handles a request the ledger already knows: a final
// result is published again (the deterministic id makes it a no-op when it
// was stored before) and done is true. A claim is either still running
// (errLeaseHeld, redelivered later), recorded from memory, or, past its
// lease, failed as "outcome unknown" without executing again.
func (w *Worker) replayIfRecorded(ctx context.Context, req schemas.ActionRequest, corr string, now time.Time, log *slog.Logger) (done bool, err error) {
	var entry LedgerEntry
	rev, err := readLedger(ctx, w.deps.Ledger, req.ID, &entry)
	if errors.Is(err, schemas.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read ledger: %w", err)
	}
	switch {
	case entry.State == LedgerDone && entry.Result != nil:
		log.Info("request already decided; publishing its result again", "outcome", entry.Result.Outcome)
		return true, w.publishResult(ctx, *entry.Result, entry.CorrelationID)
	case entry.State != LedgerClaimed:
		return true, permanent(fmt.Errorf("ledger entry of %s is %q without a result; not acting on it", req.ID, entry.State))
	}
	w.mu.Lock()
	u, haveResult := w.unrecorded[req.ID]
	running := w.inflight[req.ID]
	w.mu.Unlock()
	switch {
	case haveResult:
		if _, err := updateLedger(ctx, w.deps.Ledger, u.entry, u.rev); err != nil {
			if errors.Is(err, schemas.ErrRevisionConflict) {
				w.forget(req.ID)
			}
			return true, fmt.Errorf("record result: %w", err)
		}
		w.forget(req.ID)
		w.count(*u.entry.Result)
		return true, w.publishResult(ctx, *u.entry.Result, u.entry.CorrelationID)
	case running || now.Before(entry.LeaseUntil):
		return true, &leaseHeldError{until: entry.LeaseUntil, msg: fmt.Sprintf("%v by %s since %s (lease until %s)", errLeaseHeld,
			entry.Worker, entry.ClaimedAt.UTC().Format(time.RFC3339), entry.LeaseUntil.UTC().Format(time.RFC3339))}
	}
	res := w.result(req, schemas.OutcomeFailed, fmt.Sprintf(
		"outcome unknown: %s claimed the request at %s and recorded no result before its lease ended at %s; "+
			"not executed again (at most once), check the subject", entry.Worker,
		entry.ClaimedAt.UTC().Format(time.RFC3339), entry.LeaseUntil.UTC().Format(time.RFC3339)), now)
	res.Mode, res.StartedAt = schemas.ModeExecute, entry.ClaimedAt
	entry.State, entry.Result = LedgerDone, &res
	if _, err := updateLedger(ctx, w.deps.Ledger, entry, rev); err != nil {
		return true, fmt.Errorf("record unknown outcome: %w", err)
	}
	log.Error("request claimed by a worker that did not finish; failing it without executing again", "claimed_by", entry.Worker)
	w.count(res)
	return true, w.publishResult(ctx, res, entry.CorrelationID)
}

func (w *Worker) forget(id string) {
	w.mu.Lock()
	delete(w.unrecorded, id)
	w.mu.Unlock()
}

// conclude records and publishes an outcome decided by the gates.
func (w *Worker) conclude(ctx context.Context, req schemas.ActionRequest, corr string, v verdict, now time.Time, log *slog.Logger) error {
	res := w.result(req, v.outcome, v.reason, now)
	res.Gates = v.gates
	if v.outcome == schemas.OutcomeAwaitingApproval {
		if v.approvalCreated {
			w.count(res)
			log.Info("request awaiting approval", "reason", v.reason)
		}
		return w.publishResult(ctx, res, corr)
	}
	entry := LedgerEntry{RequestID: req.ID, State: LedgerDone, Worker: w.cfg.WorkerID, CorrelationID: corr, Result: &res}
	if _, err := createLedger(ctx, w.deps.Ledger, entry); err != nil {
		if errors.Is(err, schemas.ErrRevisionConflict) {
			// Another delivery decided or claimed it first; follow it.
			done, err := w.replayIfRecorded(ctx, req, corr, now, log)
			if !done && err == nil {
				err = fmt.Errorf("ledger entry of %s changed under us", req.ID)
			}
			return err
		}
		return fmt.Errorf("record outcome: %w", err)
	}
	w.count(res)
	log.Info("request decided", "outcome", res.Outcome, "reason", res.Reason)
	return w.publishResult(ctx, res, corr)
}

// result is a result without execution.
func (w *Worker) result(req schemas.ActionRequest, outcome, reason string, now time.Time) schemas.ActionResult {
	return schemas.ActionResult{
		RequestID: req.ID, Subject: req.Subject, Instance: req.Instance, Action: req.Action,
		Outcome: outcome, Reason: reason, Mode: w.cfg.Mode, Params: req.Params,
		StartedAt: now, FinishedAt: now,
	}
}

func (w *Worker) count(res schemas.ActionResult) {
	w.metrics.requests.WithLabelValues(res.Subject, res.Action, res.Outcome).Inc()
}

// execute claims the request in the ledger, runs the action and records and
// publishes the result.
func (w *Worker) execute(ctx context.Context, m *Delivery, req schemas.ActionRequest, corr string, v verdict, now time.Time, log *slog.Logger) error {
	timeout := w.attemptTimeout(v.action)
	entry := LedgerEntry{RequestID: req.ID, State: LedgerClaimed, Worker: w.cfg.WorkerID, ClaimedAt: now,
		LeaseUntil: now.Add(w.maxExecution(timeout) + w.cfg.LeaseMargin), CorrelationID: corr}
	rev, err := createLedger(ctx, w.deps.Ledger, entry)
	if errors.Is(err, schemas.ErrRevisionConflict) {
		done, err := w.replayIfRecorded(ctx, req, corr, now, log)
		if !done && err == nil {
			err = fmt.Errorf("ledger entry of %s changed under us", req.ID)
		}
		return err
	}
	if err != nil {
		return fmt.Errorf("claim request in ledger: %w", err)
	}
	w.mu.Lock()
	w.inflight[req.ID] = true
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		delete(w.inflight, req.ID)
		w.mu.Unlock()
	}()

	stop := keepAlive(ctx, m, w.cfg.AckWait/3)
	res := w.run(ctx, v.sub.Executor, v.action, req, timeout, now, log)
	stop()
	res.Gates = append(v.gates, schemas.GateDecision{Gate: schemas.GateLedger, Decision: schemas.GatePassed,
		Reason: "claimed by " + w.cfg.WorkerID + "; runs at most once"})

	entry.State, entry.Result = LedgerDone, &res
	if _, err := updateLedger(ctx, w.deps.Ledger, entry, rev); err != nil {
		w.mu.Lock()
		w.unrecorded[req.ID] = unrecordedResult{entry: entry, rev: rev}
		w.mu.Unlock()
		return fmt.Errorf("record result: %w", err)
	}
	w.count(res)
	log.Info("action executed", "outcome", res.Outcome, "attempts", res.Attempts, "reason", res.Reason)
	return w.publishResult(ctx, res, corr)
}

// run makes the attempts: each with its own timeout, retrying transient
// errors with backoff, stopping when the kill switch is engaged between
// attempts.
func (w *Worker) run(ctx context.Context, exec Executor, a *Action, req schemas.ActionRequest, timeout time.Duration, now time.Time, log *slog.Logger) schemas.ActionResult {
	res := w.result(req, "", "", now)
	res.Mode = schemas.ModeExecute
	backoff := w.cfg.RetryBackoff
	var lastErr error
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			ks, err := engagedKillSwitch(ctx, w.deps.Control, req.Subject)
			if err != nil || ks != nil {
				why := "the kill switch was engaged"
				if err != nil {
					why = fmt.Sprintf("the kill switch could not be read (%v)", err)
				}
				res.Outcome = schemas.OutcomeFailed
				res.Reason = fmt.Sprintf("stopped after %d attempt(s) because %s; last error: %v", attempt-1, why, lastErr)
				break
			}
		}
		actx, cancel := context.WithTimeout(ctx, timeout)
		start := time.Now()
		out, err := exec.Execute(actx, req)
		w.metrics.execution.WithLabelValues(req.Subject, a.Name).Observe(time.Since(start).Seconds())
		cancel()
		res.Attempts = attempt
		if err == nil {
			res.Outcome, res.Output = schemas.OutcomeSucceeded, out.Output
			res.Reason = out.Reason
			if res.Reason == "" {
				res.Reason = fmt.Sprintf("executed in %d attempt(s)", attempt)
			}
			break
		}
		lastErr = err
		if !IsTransient(err) {
			res.Outcome, res.Reason = schemas.OutcomeFailed, fmt.Sprintf("permanent error, not retried: %v", err)
			break
		}
		if attempt >= w.cfg.MaxAttempts {
			res.Outcome, res.Reason = schemas.OutcomeFailed, fmt.Sprintf("transient error, gave up after %d attempts: %v", attempt, err)
			break
		}
		log.Warn("action failed transiently; retrying", "attempt", attempt, "retry_in", backoff, "error", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			res.Outcome, res.Reason = schemas.OutcomeFailed, fmt.Sprintf("out of time after %d attempt(s); last error: %v", attempt, err)
		case <-t.C:
		}
		if res.Outcome != "" {
			break
		}
		backoff = min(2*backoff, w.cfg.MaxRetryBackoff)
	}
	res.FinishedAt = time.Now()
	return res
}

// keepAlive tells the server the message is still being worked on every
// interval until the returned stop is called; stop waits for the goroutine.
func keepAlive(ctx context.Context, m *Delivery, interval time.Duration) (stop func()) {
	if interval <= 0 {
		interval = time.Second
	}
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if m.InProgress != nil {
					_ = m.InProgress() // best effort: a missed one only risks a redelivery the ledger absorbs
				}
			}
		}
	}()
	return func() {
		close(done)
		<-exited
	}
}

// publishResult publishes an action.completed event. The final result of a
// request has the id DeriveID(request id, "completed"); the notice that it
// awaits approval has its own.
func (w *Worker) publishResult(ctx context.Context, res schemas.ActionResult, corr string) error {
	id := schemas.DeriveID(res.RequestID, "completed")
	if res.Outcome == schemas.OutcomeAwaitingApproval {
		id = schemas.DeriveID(res.RequestID, "completed", schemas.OutcomeAwaitingApproval)
	}
	subj, err := w.subjects.ActionCompleted(res.Subject, res.Instance)
	if err != nil {
		return permanent(err)
	}
	e, err := schemas.NewEvent(schemas.EventSpec{
		Type: schemas.TypeActionCompleted, Source: w.source, Subject: res.Subject + "/" + res.Instance,
		ID: id, Time: res.FinishedAt, CorrelationID: corr, CausationID: res.RequestID,
	}, res)
	if err != nil {
		return permanent(err)
	}
	if err := w.deps.Bus.Publish(ctx, subj, e); err != nil {
		return fmt.Errorf("publish result: %w", err)
	}
	return nil
}

// sweepLoop expires approvals nobody decided in time, every SweepInterval.
func (w *Worker) sweepLoop(ctx context.Context) error {
	t := time.NewTicker(w.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := w.sweep(ctx, time.Now()); err != nil && ctx.Err() == nil {
				w.log.Warn("approval sweep failed", "error", err)
			}
		}
	}
}

// sweep expires the pending approvals of this worker's subjects whose
// deadline passed at now, resubmitting each so the worker records it as
// rejected, and deletes decided records older than ApprovalRetention.
func (w *Worker) sweep(ctx context.Context, now time.Time) error {
	list, err := ListApprovals(ctx, w.deps.Control)
	if err != nil {
		return err
	}
	var errs []error
	for _, a := range list {
		if _, ok := w.deps.Subjects[a.Request.Subject]; !ok {
			continue
		}
		switch {
		case a.State == ApprovalPending && now.After(a.ExpiresAt):
			var rec Approval
			err := casLoop(ctx, w.deps.Control, approvalKey(a.RequestID), func(cur []byte, found bool) ([]byte, error) {
				if !found {
					return nil, errUnchanged
				}
				if err := json.Unmarshal(cur, &rec); err != nil {
					return nil, err
				}
				if rec.State != ApprovalPending || !now.After(rec.ExpiresAt) {
					return nil, errUnchanged
				}
				rec.State, rec.DecidedAt, rec.DecidedBy = ApprovalExpired, now, w.source
				rec.Reason = "no decision before " + rec.ExpiresAt.UTC().Format(time.RFC3339)
				return json.Marshal(rec)
			})
			if err == nil && rec.State == ApprovalExpired {
				err = resubmit(ctx, w.deps.Bus, w.subjects, rec, w.source, now)
				w.log.Info("approval expired", "request_id", rec.RequestID, "subject", rec.Request.Subject, "action", rec.Request.Action)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("expire approval %s: %w", a.RequestID, err))
			}
		case a.State != ApprovalPending && !a.DecidedAt.IsZero() && now.Sub(a.DecidedAt) > w.cfg.ApprovalRetention:
			if err := w.deps.Control.Delete(ctx, approvalKey(a.RequestID)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func orNone(s string) string {
	if strings.TrimSpace(s) == "" {
		return "(no reason given)"
	}
	return s
}
