package actuators

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/operator-dev/operator/schemas"
)

// Kinds of budget entries.
const (
	chargeAction             = "action"
	chargeFailedVerification = "failed_verification"
)

// budgetRecord is one subject's window of recent actions, kept under
// budget/<subject> in operator_control and changed only by compare-and-swap,
// so every replica shares one budget and one set of cooldowns.
type budgetRecord struct {
	// MaxActions and Per are the limits of the last writer, for status.
	MaxActions int           `json:"max_actions"`
	Per        time.Duration `json:"per"`
	Entries    []budgetEntry `json:"entries"`
}

type budgetEntry struct {
	RequestID string `json:"request_id"`
	Kind      string `json:"kind"`
	Instance  string `json:"instance"`
	Action    string `json:"action"`
	Target    string `json:"target,omitempty"`
	// At is when the action was admitted (or its verification failed).
	At time.Time `json:"at"`
	// CooldownUntil is when the same action may run on the same target
	// again.
	CooldownUntil time.Time `json:"cooldown_until,omitzero"`
}

// limits are the budget a worker enforces.
type limits struct {
	max int
	per time.Duration
}

// prune drops entries that neither count against the budget nor hold a
// cooldown at now.
func (r *budgetRecord) prune(now time.Time, per time.Duration) {
	kept := r.Entries[:0]
	for _, e := range r.Entries {
		if e.At.After(now.Add(-per)) || e.CooldownUntil.After(now) {
			kept = append(kept, e)
		}
	}
	r.Entries = kept
}

// used counts the entries within per before now. Entries stamped after now
// count too: another replica's clock, or its later arrival time, must never
// let two replicas both spend the last slot.
func (r *budgetRecord) used(now time.Time, per time.Duration) int {
	n := 0
	for _, e := range r.Entries {
		if e.At.After(now.Add(-per)) {
			n++
		}
	}
	return n
}

func (r *budgetRecord) has(requestID, kind string) bool {
	for _, e := range r.Entries {
		if e.RequestID == requestID && e.Kind == kind {
			return true
		}
	}
	return false
}

// admit decides whether the action entry e may run at now. It returns ""
// and whether it appended e, or the reason it may not. An entry already
// admitted (a redelivered request) is admitted again without a second
// charge.
func (r *budgetRecord) admit(e budgetEntry, cooldown time.Duration, l limits, now time.Time) (refusal string, added bool) {
	r.prune(now, l.per)
	if r.has(e.RequestID, e.Kind) {
		return "", false
	}
	for _, x := range r.Entries {
		if x.Kind == chargeAction && x.Instance == e.Instance && x.Action == e.Action && x.Target == e.Target &&
			x.CooldownUntil.After(now) {
			what := e.Action + " on " + e.Instance
			if e.Target != "" {
				what += " target " + e.Target
			}
			return fmt.Sprintf("cooldown: %s ran at %s (request %s); next allowed after %s", what,
				x.At.UTC().Format(time.RFC3339), x.RequestID, x.CooldownUntil.UTC().Format(time.RFC3339)), false
		}
	}
	if used := r.used(now, l.per); used >= l.max {
		return fmt.Sprintf("budget: %d of %d actions on this subject used in the last %s (failed verifications count); next slot at %s",
			used, l.max, l.per, r.nextSlot(now, l).UTC().Format(time.RFC3339)), false
	}
	e.At = now
	if cooldown > 0 {
		e.CooldownUntil = now.Add(cooldown)
	}
	r.Entries = append(r.Entries, e)
	return "", true
}

// nextSlot is when the oldest entry within the window leaves it.
func (r *budgetRecord) nextSlot(now time.Time, l limits) time.Time {
	var at []time.Time
	for _, e := range r.Entries {
		if e.At.After(now.Add(-l.per)) {
			at = append(at, e.At)
		}
	}
	if len(at) == 0 {
		return now
	}
	sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
	return at[max(0, len(at)-l.max)].Add(l.per)
}

func (r *budgetRecord) remaining(now time.Time, l limits) int {
	return max(0, l.max-r.used(now, l.per))
}

func (r *budgetRecord) status(subject string, now time.Time) BudgetStatus {
	st := BudgetStatus{Subject: subject, MaxActions: r.MaxActions, Per: r.Per, Used: r.used(now, r.Per)}
	for _, e := range r.Entries {
		if e.CooldownUntil.After(now) {
			st.Cooling = append(st.Cooling, Cooldown{Instance: e.Instance, Action: e.Action, Target: e.Target, Until: e.CooldownUntil})
		}
	}
	return st
}

// budgets reads and changes the per-subject records in the control bucket.
type budgets struct {
	control schemas.Store
	limits  limits
}

func budgetKey(subject string) string { return keyBudgetPrefix + subject }

// check reports whether e could be admitted at now, without charging.
func (b budgets) check(ctx context.Context, subject string, e budgetEntry, cooldown time.Duration, now time.Time) (refusal string, remaining int, err error) {
	var r budgetRecord
	if _, err := getJSON(ctx, b.control, budgetKey(subject), &r); err != nil {
		return "", 0, fmt.Errorf("read budget: %w", err)
	}
	refusal, _ = r.admit(e, cooldown, b.limits, now)
	return refusal, r.remaining(now, b.limits), nil
}

// reserve admits e at now with compare-and-swap: of concurrent replicas
// admitting actions on one subject, only as many as the budget allows win.
func (b budgets) reserve(ctx context.Context, subject string, e budgetEntry, cooldown time.Duration, now time.Time) (refusal string, remaining int, err error) {
	err = casLoop(ctx, b.control, budgetKey(subject), func(cur []byte, found bool) ([]byte, error) {
		var r budgetRecord
		if found {
			if err := json.Unmarshal(cur, &r); err != nil {
				return nil, fmt.Errorf("decode budget: %w", err)
			}
		}
		var added bool
		refusal, added = r.admit(e, cooldown, b.limits, now)
		remaining = r.remaining(now, b.limits)
		if !added {
			return nil, errUnchanged
		}
		r.MaxActions, r.Per = b.limits.max, b.limits.per
		return json.Marshal(r)
	})
	if err != nil {
		return "", 0, fmt.Errorf("reserve budget: %w", err)
	}
	return refusal, remaining, nil
}

// charge adds a failed verification of request requestID to the subject's
// window, whatever the budget left: it only makes later actions wait. It is
// idempotent.
func (b budgets) charge(ctx context.Context, subject, requestID, instance, action string, now time.Time) (remaining int, err error) {
	err = casLoop(ctx, b.control, budgetKey(subject), func(cur []byte, found bool) ([]byte, error) {
		var r budgetRecord
		if found {
			if err := json.Unmarshal(cur, &r); err != nil {
				return nil, fmt.Errorf("decode budget: %w", err)
			}
		}
		r.prune(now, b.limits.per)
		remaining = r.remaining(now, b.limits)
		if r.has(requestID, chargeFailedVerification) {
			return nil, errUnchanged
		}
		r.Entries = append(r.Entries, budgetEntry{RequestID: requestID, Kind: chargeFailedVerification,
			Instance: instance, Action: action, At: now})
		r.MaxActions, r.Per = b.limits.max, b.limits.per
		remaining = r.remaining(now, b.limits)
		return json.Marshal(r)
	})
	if err != nil {
		return 0, fmt.Errorf("charge budget: %w", err)
	}
	return remaining, nil
}
