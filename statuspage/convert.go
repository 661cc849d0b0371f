package statuspage

import (
	"encoding/json"
	"time"

	"github.com/operator-dev/operator/actuators"
	"github.com/operator-dev/operator/evaluators"
	"github.com/operator-dev/operator/schemas"
)

// rules indexes the rule sets the page was given.
type rules struct {
	byName     map[string]map[string]*evaluators.Rule // subject → rule name → rule
	staleAfter map[string]time.Duration               // subject → its rule set's stale_after
}

func newRules(sets []*evaluators.RuleSet) rules {
	r := rules{byName: map[string]map[string]*evaluators.Rule{}, staleAfter: map[string]time.Duration{}}
	for _, rs := range sets {
		if r.byName[rs.Subject] == nil {
			r.byName[rs.Subject] = map[string]*evaluators.Rule{}
		}
		for _, rule := range rs.Rules {
			r.byName[rs.Subject][rule.Name] = rule
		}
		if rs.StaleAfter > 0 {
			r.staleAfter[rs.Subject] = rs.StaleAfter
		}
	}
	return r
}

// staleAfterOf is the evaluator's staleness threshold for an instance of
// subject whose observer polls every intervalMS (see evaluators.Config).
func (r rules) staleAfterOf(subject string, intervalMS int64) time.Duration {
	if d := r.staleAfter[subject]; d > 0 {
		return d
	}
	if intervalMS > 0 {
		return evaluators.DefaultStaleIntervals * time.Duration(intervalMS) * time.Millisecond
	}
	return evaluators.DefaultStaleAfter
}

// alertOf turns a change of the evaluator's state bucket into an alert;
// nil for the bucket's other records. A deleted key is an inactive alert.
func (r rules) alertOf(key string, value []byte, deleted bool) *Alert {
	if deleted {
		return &Alert{Fingerprint: key, State: schemas.AlertInactive}
	}
	var rec schemas.AlertRecord
	if json.Unmarshal(value, &rec) != nil || rec.Fingerprint == "" || rec.State == "" {
		return nil
	}
	a := &Alert{Fingerprint: rec.Fingerprint, Subject: rec.Subject, Instance: rec.Instance, Rule: rec.Rule, Key: rec.Key,
		State: rec.State, Episode: rec.Episode, ActiveAt: rec.ActiveAt, FiredAt: rec.FiredAt, ResolvedAt: rec.ResolvedAt,
		KeepFiringSince: rec.KeepFiringSince, LastEvalAt: rec.LastEvalAt}
	rule := r.byName[rec.Subject][rec.Rule]
	if rule != nil {
		a.Severity = rule.Severity
	}
	if rec.State != schemas.AlertPending {
		// What the firing violation said; a pending alert's record may
		// still hold the previous episode's.
		var x struct {
			Severity string `json:"severity"`
			Summary  string `json:"summary"`
		}
		if json.Unmarshal(rec.Extra, &x) == nil {
			a.Summary = x.Summary
			if x.Severity != "" {
				a.Severity = x.Severity
			}
		}
	}
	if rule == nil {
		return a
	}
	t := rule.Timing()
	ms := t.For.Milliseconds()
	a.ForMS = &ms
	if rec.State == schemas.AlertPending && rec.ActiveAt != nil {
		at := rec.ActiveAt.Add(t.For)
		a.FiresAt = &at
	}
	if rec.State == schemas.AlertFiring && rec.KeepFiringSince != nil {
		at := rec.KeepFiringSince.Add(t.KeepFiringFor)
		a.ResolvesAt = &at
	}
	return a
}

// controlOf turns the actuators' control status read at now into what the
// page shows: approvals still awaiting a decision, and the rest as it is.
func controlOf(st actuators.Status, now time.Time) *Control {
	c := &Control{KillSwitches: []actuators.KillSwitch{}, Approvals: []Approval{}, Budgets: []Budget{}}
	c.KillSwitches = append(c.KillSwitches, st.KillSwitches...)
	for _, a := range st.Approvals {
		if a.State != actuators.ApprovalPending || now.After(a.ExpiresAt) {
			continue
		}
		r := a.Request
		c.Approvals = append(c.Approvals, Approval{RequestID: a.RequestID, State: string(a.State), Subject: r.Subject,
			Instance: r.Instance, Action: r.Action, Params: r.Params, Reason: r.Reason, RequestedBy: r.RequestedBy,
			Risk: string(a.Risk), Episode: a.CorrelationID, RequestedAt: a.RequestedAt, ExpiresAt: a.ExpiresAt})
	}
	for _, b := range st.Budgets {
		out := Budget{Subject: b.Subject, Used: b.Used, MaxActions: b.MaxActions, PerMS: b.Per.Milliseconds()}
		for _, cd := range b.Cooling {
			out.Cooling = append(out.Cooling, Cooldown{Instance: cd.Instance, Action: cd.Action, Target: cd.Target, Until: cd.Until})
		}
		c.Budgets = append(c.Budgets, out)
	}
	return c
}

// instanceOf turns an observation into its instance's health and tables at
// now (wall time, for staleness); nil when it is not an observation.
func (p *Page) instanceOf(data []byte, now time.Time) *Instance {
	var o schemas.Observation
	if json.Unmarshal(data, &o) != nil || o.Subject == "" || o.Instance == "" {
		return nil
	}
	sa := p.rules.staleAfterOf(o.Subject, o.Observer.IntervalMS)
	inst := &Instance{Subject: o.Subject, Instance: o.Instance, ObservedAt: o.ObservedAt, IntervalMS: o.Observer.IntervalMS,
		DurationMS: o.Observer.DurationMS, StaleAfterMS: sa.Milliseconds(), Stale: now.Sub(o.ObservedAt) > sa,
		Errors: o.Observer.Errors, Tables: p.views[o.Subject].Tables(data)}
	if inst.Errors == nil {
		inst.Errors = []schemas.ObserverError{}
	}
	if inst.Tables == nil {
		inst.Tables = []Table{}
	}
	return inst
}
