package scenario

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/operator-dev/operator/internal/bus"
	"github.com/operator-dev/operator/ratelimiter/loadgen"
	"github.com/operator-dev/operator/schemas"
)

// Result is what happened in one scenario.
type Result struct {
	Scenario string
	Rule     string
	Fired    bool
	// TTD is from injection to the violation firing (its event time).
	TTD      time.Duration
	Action   string
	Outcome  string
	Verified *bool
	Resolved bool
	// TTR is from injection to the violation resolving.
	TTR time.Duration
	// Also lists the other expected rules that fired.
	Also []string
	// Unexpected lists rules that fired and were not expected.
	Unexpected []string
	// Diagnosis is the top hypothesis of the episode's diagnosis ("" when
	// none came), with its certainty; DiagnosisAfter is from the violation
	// to the diagnosis. Correct says whether it names the scenario's
	// RootCause.
	Diagnosis      string
	Certainty      string
	DiagnosisAfter time.Duration
	Correct        bool
	// Diagnosed is the diagnosis itself, for `operator demo --explain`.
	Diagnosed *schemas.Diagnosis
	Err       error
}

// OK reports whether the scenario went as expected.
func (r Result) OK() bool { return r.Err == nil }

// Runner runs scenarios against a stack whose events it reads from Bus.
type Runner struct {
	Bus      *bus.Bus
	Env      *Env
	Instance string
	// Out receives the timeline, one line per step.
	Out io.Writer
	// Approve approves a request awaiting approval, as a person would.
	Approve func(ctx context.Context, requestID string) error
	// SteadyFor is how long the stack must run quietly under load before
	// the fault (default 6s).
	SteadyFor time.Duration
}

type watched struct {
	e       event.Event
	subject string
}

// Run runs one scenario: setup, load, steady state, injection, then follows
// the events until the violation resolves or the deadline passes.
func (r *Runner) Run(ctx context.Context, sc Scenario) (res Result) {
	res = Result{Scenario: sc.Name, Rule: sc.Rule, Action: sc.Action}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	events := make(chan watched, 1024)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() {
		// A tail that cannot start leaves the scenario without events: it
		// then fails on its deadline, naming what did not happen.
		_ = r.Bus.Tail(ctx, "", time.Time{}, func(subject string, e event.Event, err error) {
			if err != nil || e.Type() == schemas.TypeObservation {
				return
			}
			select {
			case events <- watched{e: e, subject: subject}:
			case <-ctx.Done():
			}
		})
	})

	if sc.Setup != nil {
		if err := sc.Setup(ctx, r.Env); err != nil {
			res.Err = fmt.Errorf("setup: %w", err)
			return res
		}
	}
	load := sc.Load
	load.Targets = r.Env.URLs()
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	wg.Go(func() { _, _ = loadgen.Run(loadCtx, load, nil) })

	firing := map[string]string{} // fingerprint → rule, currently firing
	steadyFor := r.SteadyFor
	if steadyFor == 0 {
		steadyFor = 6 * time.Second
	}
	r.printf("%-16s load %s at %d checks/s; waiting %s for steady state", sc.Name, load.Pattern, load.RPS, steadyFor)
	if err := r.waitSteady(ctx, events, firing, steadyFor); err != nil {
		res.Err = err
		return res
	}

	t0 := time.Now()
	undo, err := sc.Inject(ctx, r.Env)
	if err != nil {
		res.Err = fmt.Errorf("inject: %w", err)
		return res
	}
	if sc.FaultLoad != nil {
		fl := *sc.FaultLoad
		fl.Targets = load.Targets
		if sc.FaultLoadAvoidsVictim {
			fl.Targets = nil
			for _, id := range r.Env.Order {
				if id != r.Env.Victim() {
					fl.Targets = append(fl.Targets, r.Env.Nodes[id].BaseURL())
				}
			}
		}
		wg.Go(func() { _, _ = loadgen.Run(loadCtx, fl, nil) })
	}
	r.step(0, "injected: %s", sc.Description)
	undone := false
	doUndo := func(why string) {
		if undone {
			return
		}
		undone = true
		if undo == nil {
			return
		}
		uctx, ucancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer ucancel()
		if err := undo(uctx); err != nil {
			res.Err = errors.Join(res.Err, fmt.Errorf("undo: %w", err))
		}
		r.step(time.Since(t0), "fault taken back (%s)", why)
	}
	defer doUndo("end of scenario")

	deadline := time.NewTimer(sc.Deadline)
	defer deadline.Stop()
	var undoTimer <-chan time.Time
	var episode string
	var firedAt time.Time
	diagnoses := map[string]event.Event{} // by episode, until the episode is known
	takeDiagnosis := func(e event.Event) {
		var d schemas.Diagnosis
		if json.Unmarshal(e.Data(), &d) != nil || res.Diagnosis != "" {
			return
		}
		top := d.Top()
		res.Diagnosis, res.Certainty, res.Diagnosed = top.ID, top.Certainty, &d
		res.DiagnosisAfter = e.Time().Sub(firedAt)
		res.Correct = top.ID == sc.RootCause
		verdict := "CORRECT"
		if !res.Correct {
			verdict = "WRONG, the root cause is " + sc.RootCause
		}
		r.step(e.Time().Sub(t0), "diagnosis %s %s: %q (%s after the violation; %s)", strings.ToUpper(top.Certainty), top.ID,
			top.Cause, res.DiagnosisAfter.Round(time.Millisecond), verdict)
	}
	// Done when the violation resolved and, for a repair, its verification
	// is in: a repair can resolve the violation before it is verified.
	for !res.Resolved || (sc.Action != "" && res.Verified == nil) || (sc.RootCause != "" && res.Diagnosis == "") {
		select {
		case <-ctx.Done():
			res.Err = errors.Join(res.Err, ctx.Err())
			return res
		case <-deadline.C:
			res.Err = errors.Join(res.Err, r.missing(sc, res))
			return res
		case <-undoTimer:
			doUndo("the fault had no repair")
		case w := <-events:
			at := w.e.Time().Sub(t0)
			switch w.e.Type() {
			case schemas.TypeViolation:
				var v schemas.Violation
				if json.Unmarshal(w.e.Data(), &v) != nil {
					continue
				}
				if v.Status == schemas.StatusFiring {
					firing[v.Fingerprint] = v.Rule
				} else {
					delete(firing, v.Fingerprint)
				}
				switch {
				case v.Rule == sc.Rule && v.Status == schemas.StatusFiring && !res.Fired:
					res.Fired, res.TTD, episode, firedAt = true, at, v.Episode, w.e.Time()
					r.step(at, "violation FIRING %s[%s] %q (time to detect %.1fs)", v.Rule, v.Key, v.Summary, at.Seconds())
					if d, ok := diagnoses[episode]; ok {
						takeDiagnosis(d)
					}
					if sc.UndoOnFire && allFired(sc, res) {
						undoTimer = time.After(2 * time.Second)
					}
				case v.Rule == sc.Rule && v.Status == schemas.StatusResolved && v.Episode == episode && episode != "":
					res.Resolved, res.TTR = true, at
					r.step(at, "violation RESOLVED %s[%s] (time to resolve %.1fs)", v.Rule, v.Key, at.Seconds())
				case v.Status == schemas.StatusFiring && v.Rule != sc.Rule:
					switch {
					case slices.Contains(sc.AlsoFires, v.Rule):
						if !slices.Contains(res.Also, v.Rule) {
							res.Also = append(res.Also, v.Rule)
							if sc.UndoOnFire && undoTimer == nil && allFired(sc, res) {
								undoTimer = time.After(2 * time.Second)
							}
						}
					case !slices.Contains(sc.Also, v.Rule) && !slices.Contains(res.Unexpected, v.Rule):
						res.Unexpected = append(res.Unexpected, v.Rule)
					}
					r.step(at, "violation FIRING %s[%s] %q (also)", v.Rule, v.Key, v.Summary)
				}
			case schemas.TypeDiagnosis:
				ep := schemas.Extension(w.e, schemas.ExtCorrelationID)
				if episode != "" && ep == episode {
					takeDiagnosis(w.e)
				} else if episode == "" {
					diagnoses[ep] = w.e
				}
			case schemas.TypeActionRequested, schemas.TypeActionCompleted, schemas.TypeActionVerified:
				if episode == "" || schemas.Extension(w.e, schemas.ExtCorrelationID) != episode {
					continue
				}
				r.onAction(ctx, sc, w.e, at, &res, func() { doUndo("the repair is verified") })
			}
		}
	}
	doUndo("the scenario is over")
	stopLoad()
	if !res.Fired || (sc.Action != "" && (res.Outcome != schemas.OutcomeSucceeded || res.Verified == nil || !*res.Verified)) ||
		(sc.RootCause != "" && res.Diagnosis == "") {
		res.Err = errors.Join(res.Err, r.missing(sc, res))
	}
	if res.Fired && sc.Detect > 0 && res.TTD > sc.Detect {
		res.Err = errors.Join(res.Err, fmt.Errorf("%s took %.1fs to fire, over its bound of %s", sc.Rule, res.TTD.Seconds(), sc.Detect))
	}
	if !allFired(sc, res) {
		res.Err = errors.Join(res.Err, fmt.Errorf("expected %s to fire too; fired: %s", strings.Join(sc.AlsoFires, ", "), strings.Join(res.Also, ", ")))
	}
	if len(res.Unexpected) > 0 {
		res.Err = errors.Join(res.Err, fmt.Errorf("unexpected rules fired: %s", strings.Join(res.Unexpected, ", ")))
	}
	return res
}

// allFired reports whether the scenario's rule and every rule it must also
// fire have fired.
func allFired(sc Scenario, res Result) bool {
	if !res.Fired {
		return false
	}
	for _, r := range sc.AlsoFires {
		if !slices.Contains(res.Also, r) {
			return false
		}
	}
	return true
}

func (r *Runner) onAction(ctx context.Context, sc Scenario, e event.Event, at time.Duration, res *Result, verifiedUndo func()) {
	switch e.Type() {
	case schemas.TypeActionRequested:
		var a schemas.ActionRequest
		if json.Unmarshal(e.Data(), &a) == nil {
			r.step(at, "action REQUESTED %s %v by %s", a.Action, a.Params, a.RequestedBy)
		}
	case schemas.TypeActionCompleted:
		var a schemas.ActionResult
		if json.Unmarshal(e.Data(), &a) != nil {
			return
		}
		r.step(at, "action %s %s: %s", strings.ToUpper(a.Outcome), a.Action, a.Reason)
		if a.Action == sc.Action {
			res.Outcome = a.Outcome
		}
		if a.Outcome == schemas.OutcomeAwaitingApproval && sc.Approve && r.Approve != nil {
			if err := r.Approve(ctx, a.RequestID); err != nil {
				res.Err = errors.Join(res.Err, fmt.Errorf("approve: %w", err))
				return
			}
			r.step(at, "approved %s by the on-call person (operator approve %s)", a.Action, short(a.RequestID))
		}
	case schemas.TypeActionVerified:
		var v schemas.ActionVerification
		if json.Unmarshal(e.Data(), &v) != nil {
			return
		}
		verified := v.Verified
		if v.Action == sc.Action {
			res.Verified = &verified
		}
		word := "VERIFIED"
		if !verified {
			word = "NOT VERIFIED"
		}
		r.step(at, "action %s %s: %s", word, v.Action, v.Reason)
		if verified {
			verifiedUndo()
		}
	}
}

func (r *Runner) waitSteady(ctx context.Context, events <-chan watched, firing map[string]string, d time.Duration) error {
	quietSince := time.Now()
	deadline := time.Now().Add(d + 60*time.Second)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case w := <-events:
			if w.e.Type() != schemas.TypeViolation {
				continue
			}
			var v schemas.Violation
			if json.Unmarshal(w.e.Data(), &v) != nil {
				continue
			}
			if v.Status == schemas.StatusFiring {
				firing[v.Fingerprint] = v.Rule
				quietSince = time.Now()
			} else {
				delete(firing, v.Fingerprint)
			}
		case now := <-tick.C:
			if len(firing) == 0 && now.Sub(quietSince) >= d {
				return nil
			}
			if now.After(deadline) {
				var rules []string
				for _, r := range firing {
					rules = append(rules, r)
				}
				return fmt.Errorf("no steady state: still firing before the fault: %s", strings.Join(rules, ", "))
			}
		}
	}
}

func (r *Runner) missing(sc Scenario, res Result) error {
	switch {
	case !res.Fired:
		return fmt.Errorf("%s did not fire within %s", sc.Rule, sc.Deadline)
	case sc.Action != "" && res.Outcome == "":
		return fmt.Errorf("no %s action completed", sc.Action)
	case sc.Action != "" && res.Outcome != schemas.OutcomeSucceeded:
		return fmt.Errorf("%s ended %s", sc.Action, res.Outcome)
	case sc.Action != "" && res.Verified == nil:
		return fmt.Errorf("%s was not verified", sc.Action)
	case sc.Action != "" && !*res.Verified:
		return fmt.Errorf("%s failed its verification", sc.Action)
	case !res.Resolved:
		return fmt.Errorf("%s did not resolve within %s of the fault", sc.Rule, sc.Deadline)
	case sc.RootCause != "" && res.Diagnosis == "":
		return fmt.Errorf("%s was not diagnosed within %s of the fault", sc.Rule, sc.Deadline)
	}
	return nil
}

func (r *Runner) printf(format string, args ...any) {
	if r.Out != nil {
		fmt.Fprintf(r.Out, format+"\n", args...)
	}
}

func (r *Runner) step(at time.Duration, format string, args ...any) {
	r.printf("  %+7.1fs  %s", at.Seconds(), fmt.Sprintf(format, args...))
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
