package evaluators

import (
	"fmt"
	"time"

	"github.com/operator-dev/operator/schemas"
)

// State is the state of one alert, that is of one fingerprint
// (subject/instance/rule/key). Its text form is the lowercase name, the same
// string schemas.AlertRecord.State carries.
type State int

const (
	// Inactive: the expression is false, or was never true. Next: Pending
	// when the expression turns true.
	Inactive State = iota
	// Pending: true for less than the rule's `for`. Next: Firing once it has
	// been true for `for` (at once when `for` is 0); Inactive when it turns
	// false first, which abandons the episode without an event.
	Pending
	// Firing: Next: Resolved once the expression has been false for
	// `keep_firing_for`, or at once on missing data when the rule says
	// `on_missing: resolve`. A true result during keep_firing_for keeps the
	// same episode firing.
	Firing
	// Resolved: the episode is over. Next: Pending, with a new episode, when
	// the expression turns true again; a resolved episode never fires again.
	Resolved
)

var stateNames = [...]string{
	Inactive: schemas.AlertInactive,
	Pending:  schemas.AlertPending,
	Firing:   schemas.AlertFiring,
	Resolved: schemas.AlertResolved,
}

// String returns the lowercase name. It panics on a value that is not one of
// the constants: that is a programming error.
func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		panic(fmt.Sprintf("evaluators: unknown alert state %d", int(s)))
	}
	return stateNames[s]
}

// MarshalText encodes the state as its lowercase name.
func (s State) MarshalText() ([]byte, error) {
	if s < 0 || int(s) >= len(stateNames) {
		return nil, fmt.Errorf("unknown alert state %d", int(s))
	}
	return []byte(stateNames[s]), nil
}

// UnmarshalText decodes a lowercase state name.
func (s *State) UnmarshalText(b []byte) error {
	p, err := ParseState(string(b))
	if err != nil {
		return err
	}
	*s = p
	return nil
}

// ParseState returns the State named name; the empty string is Inactive.
func ParseState(name string) (State, error) {
	if name == "" {
		return Inactive, nil
	}
	for i, n := range stateNames {
		if n == name {
			return State(i), nil
		}
	}
	return Inactive, fmt.Errorf("unknown alert state %q", name)
}

// Alert is the state of one fingerprint: plain data, kept in the state store
// as a schemas.AlertRecord. All times are event times (observation ce-time);
// the zero time means unset.
type Alert struct {
	State State
	// Episode identifies the current (or last) pending/firing episode; see
	// EpisodeID. It is the correlationid of every event downstream.
	Episode string
	// ActiveAt is when the expression turned true for this episode.
	ActiveAt time.Time
	// FiredAt is when the episode started firing.
	FiredAt time.Time
	// ResolvedAt is when the episode resolved.
	ResolvedAt time.Time
	// KeepFiringSince is when a firing alert's expression turned false;
	// it stays firing until keep_firing_for has passed since then.
	KeepFiringSince time.Time
	// LastEvalAt is the time of the newest observation applied. An
	// observation at or before it changes nothing.
	LastEvalAt time.Time
	// LastEventID is the id of that observation.
	LastEventID string
}

// Timing is a rule's grace periods.
type Timing struct {
	// For is how long the expression must be true before the alert fires;
	// 0 fires on the first true result.
	For time.Duration
	// KeepFiringFor is how long a firing alert stays firing after its
	// expression turned false; 0 resolves on the first false result.
	KeepFiringFor time.Duration
}

// Result is what one evaluation says about one fingerprint.
type Result int

const (
	// ResultFalse: the expression is false, or the item is gone from a rule
	// that evaluated without error.
	ResultFalse Result = iota
	// ResultTrue: the expression is true.
	ResultTrue
	// ResultMissing: observations stopped and the rule says
	// `on_missing: resolve`.
	ResultMissing
	// ResultError: the expression could not be evaluated. A failure is not
	// an empty result: the alert keeps its state.
	ResultError
)

// Emit says which event a transition produces.
type Emit int

const (
	// EmitNone: no event.
	EmitNone Emit = iota
	// EmitFiring: the alert started firing; publish a firing violation (and
	// the rule's action request).
	EmitFiring
	// EmitResolved: the alert resolved; publish a resolved violation.
	EmitResolved
)

// String returns "none", "firing" or "resolved".
func (e Emit) String() string {
	switch e {
	case EmitFiring:
		return schemas.StatusFiring
	case EmitResolved:
		return schemas.StatusResolved
	}
	return "none"
}

// EpisodeID returns the deterministic id of the episode of fingerprint that
// became active at activeAt: every worker that makes the same transition
// derives the same id.
func EpisodeID(fingerprint string, activeAt time.Time) string {
	return schemas.DeriveID(fingerprint, activeAt.UTC().Format(time.RFC3339Nano))
}

// Step is the whole alert state machine: it applies result r, judged on the
// observation eventID taken at now, to alert a of fingerprint with the
// rule's timing t, and returns the new alert and the event to publish. It is
// pure: no I/O, no clock.
func Step(a Alert, fingerprint string, t Timing, r Result, now time.Time, eventID string) (Alert, Emit) {
	now = now.UTC()
	// An observation at or before the newest one applied is a redelivery or
	// arrived out of order: it must not move the state back in time.
	if !a.LastEvalAt.IsZero() && !now.After(a.LastEvalAt) {
		return a, EmitNone
	}
	// A failure is not an empty result: the alert keeps its state, and its
	// timers keep running from the last successful evaluation.
	if r == ResultError {
		return a, EmitNone
	}
	next := a
	next.LastEvalAt = now
	next.LastEventID = eventID

	switch r {
	case ResultTrue:
		if a.State == Inactive || a.State == Resolved {
			// A new episode starts. A resolved episode is never resumed:
			// the new one has its own id.
			next = Alert{
				State:       Pending,
				Episode:     EpisodeID(fingerprint, now),
				ActiveAt:    now,
				LastEvalAt:  now,
				LastEventID: eventID,
			}
		}
		// True again during keep_firing_for: the same episode stays firing.
		next.KeepFiringSince = time.Time{}
		if next.State == Pending && now.Sub(next.ActiveAt) >= t.For {
			// Held for `for` (immediately when for is 0).
			next.State = Firing
			next.FiredAt = now
			return next, EmitFiring
		}
		return next, EmitNone

	case ResultFalse:
		switch a.State {
		case Pending:
			// Interrupted before `for`: the episode is abandoned, nothing
			// was announced, so nothing is resolved.
			return Alert{State: Inactive, LastEvalAt: now, LastEventID: eventID}, EmitNone
		case Firing:
			if t.KeepFiringFor > 0 {
				if next.KeepFiringSince.IsZero() {
					next.KeepFiringSince = now
				}
				if now.Sub(next.KeepFiringSince) < t.KeepFiringFor {
					// Hysteresis: still firing.
					return next, EmitNone
				}
			}
			next.State = Resolved
			next.ResolvedAt = now
			next.KeepFiringSince = time.Time{}
			return next, EmitResolved
		}
		// Inactive or Resolved stays as it is.
		return next, EmitNone

	case ResultMissing:
		switch a.State {
		case Pending:
			// No data to hold the grace period on: abandon it.
			return Alert{State: Inactive, LastEvalAt: now, LastEventID: eventID}, EmitNone
		case Firing:
			// on_missing: resolve closes the episode now, without
			// waiting for keep_firing_for: there is no result to wait on.
			next.State = Resolved
			next.ResolvedAt = now
			next.KeepFiringSince = time.Time{}
			return next, EmitResolved
		}
		return next, EmitNone
	}
	panic(fmt.Sprintf("evaluators: unknown result %d", int(r)))
}
