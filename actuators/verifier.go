package actuators

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/operator-dev/operator/schemas"
)

// maxEvidenceState is the largest observation state copied into a
// verification's evidence, in bytes.
const maxEvidenceState = 16 << 10

// errShuttingDown hands a verification back to the stream on shutdown.
var errShuttingDown = errors.New("worker shutting down; verification handed back")

// handleCompleted is the verification consumer's handler. For a succeeded
// action (whose verification window ended less than MaxRequestAge ago) it
// watches the subject instance's observations made after the
// action until the catalog's verify expression holds on one, or
// verify_within passes, and publishes action.verified. A failed
// verification is charged to the subject's budget. run is the worker's Run
// context: when it ends, the verification is abandoned and redelivered, and
// the next attempt keeps the same deadline (it is event time: the action's
// finish plus verify_within).
func (w *Worker) handleCompleted(ctx, run context.Context, m *Delivery) error {
	var res schemas.ActionResult
	if err := json.Unmarshal(m.Event.Data(), &res); err != nil {
		return permanent(fmt.Errorf("decode action result: %w", err))
	}
	if res.Outcome != schemas.OutcomeSucceeded {
		return nil
	}
	log := w.log.With("request_id", res.RequestID, "subject", res.Subject, "instance", res.Instance, "action", res.Action)
	sub, ok := w.deps.Subjects[res.Subject]
	var a *Action
	if ok {
		a, ok = sub.Catalog.Action(res.Action)
	}
	if !ok || a.verify == nil {
		log.Error("cannot verify: the action is not in this worker's catalog")
		return nil
	}
	if late := time.Since(res.FinishedAt.Add(a.VerifyWithin)); late > w.cfg.MaxRequestAge {
		// A completion from before this consumer existed (its first start
		// reads the stream from the beginning): too old to judge.
		log.Info("not verifying an action whose verification window ended long ago", "ended_ago", late.Round(time.Second))
		return nil
	}
	corr := schemas.Extension(m.Event, schemas.ExtCorrelationID)

	entry, err := ReadLedger(ctx, w.deps.Ledger, res.RequestID)
	switch {
	case err == nil && entry.Verification != nil:
		return w.publishVerification(ctx, *entry.Verification, corr)
	case err != nil && !errors.Is(err, schemas.ErrKeyNotFound):
		return fmt.Errorf("read ledger: %w", err)
	}

	v, err := w.verify(ctx, run, m, a, res)
	if err != nil {
		return err
	}
	if !v.Verified {
		remaining, err := w.budgets.charge(ctx, res.Subject, res.RequestID, res.Instance, res.Action, v.CheckedAt)
		if err != nil {
			return err
		}
		w.metrics.budget.WithLabelValues(res.Subject).Set(float64(remaining))
	}
	if err := recordVerification(ctx, w.deps.Ledger, v); err != nil {
		return fmt.Errorf("record verification: %w", err)
	}
	w.metrics.verified(res.Subject, res.Action, v.Verified)
	if v.Verified {
		log.Info("action verified", "reason", v.Reason)
	} else {
		log.Warn("action NOT verified", "reason", v.Reason)
	}
	return w.publishVerification(ctx, v, corr)
}

// verify watches observations of the action's subject instance stored since
// the action finished. Observations made (event time) before the action
// started are ignored, and so are those made after the deadline
// (FinishedAt + VerifyWithin), so a late or repeated verification judges the
// same observations. It reads the wall clock: it is part of the consumer
// loop and waits until the deadline plus VerifyGrace at most. An error means
// the observations could not be read, never "not verified".
func (w *Worker) verify(ctx, run context.Context, m *Delivery, a *Action, res schemas.ActionResult) (schemas.ActionVerification, error) {
	start := time.Now()
	deadline := res.FinishedAt.Add(a.VerifyWithin)
	end := deadline.Add(w.cfg.VerifyGrace)
	if floor := start.Add(w.cfg.VerifyGrace); end.Before(floor) {
		end = floor // a late verification still reads what was stored in time
	}
	vctx, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	stopOnShutdown := context.AfterFunc(run, cancel)
	defer stopOnShutdown()
	stop := keepAlive(vctx, m, w.cfg.AckWait/3)
	defer stop()

	filter, err := w.subjects.Observation(res.Subject, res.Instance)
	if err != nil {
		return schemas.ActionVerification{}, permanent(err)
	}
	var (
		mu       sync.Mutex
		n        int
		verified bool
		last     event.Event
		lastErr  error
	)
	terr := w.deps.Bus.Tail(vctx, filter, res.FinishedAt, func(_ string, e event.Event, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil || verified || e.Type() != schemas.TypeObservation {
			return
		}
		if e.Time().Before(res.StartedAt) || e.Time().After(deadline) {
			return
		}
		n++
		ok, err := a.verify.eval(e.Data(), res.Params)
		last, lastErr = e, err
		if err == nil && ok {
			verified = true
			cancel()
		}
	})
	if terr != nil && vctx.Err() == nil {
		return schemas.ActionVerification{}, fmt.Errorf("read observations of %s/%s: %w", res.Subject, res.Instance, terr)
	}
	mu.Lock()
	defer mu.Unlock()
	if !verified && run.Err() != nil {
		return schemas.ActionVerification{}, errShuttingDown
	}
	v := schemas.ActionVerification{
		RequestID: res.RequestID, Subject: res.Subject, Instance: res.Instance, Action: res.Action,
		Verified: verified, Expr: a.Verify, Observations: n, CheckedAt: time.Now(),
	}
	switch {
	case verified:
		v.Reason = fmt.Sprintf("verify held on the observation of %s, %s after the action finished",
			last.Time().UTC().Format(time.RFC3339Nano), last.Time().Sub(res.FinishedAt).Round(time.Millisecond))
	case n == 0:
		v.Reason = fmt.Sprintf("no observation of %s/%s within %s after the action", res.Subject, res.Instance, a.VerifyWithin)
	case lastErr != nil:
		v.Reason = fmt.Sprintf("verify did not hold within %s on %d observation(s); the last could not be judged: %v", a.VerifyWithin, n, lastErr)
	default:
		v.Reason = fmt.Sprintf("verify did not hold within %s on %d observation(s)", a.VerifyWithin, n)
	}
	if n > 0 {
		v.Evidence = evidenceOf(last, lastErr)
	}
	return v, nil
}

// evidenceOf summarises the observation a verification judged last.
func evidenceOf(e event.Event, evalErr error) json.RawMessage {
	ev := map[string]any{"observation_id": e.ID(), "observed_at": e.Time().UTC()}
	if evalErr != nil {
		ev["error"] = evalErr.Error()
	}
	var obs struct {
		State json.RawMessage `json:"state"`
	}
	if err := json.Unmarshal(e.Data(), &obs); err == nil {
		if len(obs.State) <= maxEvidenceState {
			ev["state"] = obs.State
		} else {
			ev["state_omitted_bytes"] = len(obs.State)
		}
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return nil
	}
	return b
}

// publishVerification publishes an action.verified event with the id
// DeriveID(request id, "verified").
func (w *Worker) publishVerification(ctx context.Context, v schemas.ActionVerification, corr string) error {
	subj, err := w.subjects.ActionVerified(v.Subject, v.Instance)
	if err != nil {
		return permanent(err)
	}
	if corr == "" {
		corr = v.RequestID
	}
	e, err := schemas.NewEvent(schemas.EventSpec{
		Type: schemas.TypeActionVerified, Source: w.source, Subject: v.Subject + "/" + v.Instance,
		ID: schemas.DeriveID(v.RequestID, "verified"), Time: v.CheckedAt, CorrelationID: corr, CausationID: v.RequestID,
	}, v)
	if err != nil {
		return permanent(err)
	}
	if err := w.deps.Bus.Publish(ctx, subj, e); err != nil {
		return fmt.Errorf("publish verification: %w", err)
	}
	return nil
}
