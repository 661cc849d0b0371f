package statuspage

import (
	"cmp"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/operator-dev/operator/schemas"
)

// maxHypotheses is how many hypotheses of a diagnosis the page shows.
const maxHypotheses = 3

// episodeOf turns one event of the violations, actions or diagnoses stream
// into the part of its episode it tells: header fields and steps. stream is
// the stream's letter, seq the event's sequence there. withData keeps the
// evidence's data (the episode endpoint); the status and updates leave it
// out. It returns nil for an event that belongs to no episode.
func episodeOf(stream byte, seq uint64, e event.Event, withData bool) *Episode {
	id := schemas.Extension(e, schemas.ExtCorrelationID)
	ep := &Episode{Steps: []Step{}}
	n := 0
	step := func(s Step) {
		s.ID = string(stream) + strconv.FormatUint(seq, 10) + "." + strconv.Itoa(n)
		n++
		s.Rank = stepRanks[s.Kind]
		s.EventID, s.Stream, s.Sequence = e.ID(), string(stream), seq
		if s.CausedBy == "" {
			s.CausedBy = schemas.Extension(e, schemas.ExtCausationID)
		}
		if s.Status == "" {
			s.Status = "info"
		}
		ep.Steps = append(ep.Steps, s)
		if s.At.After(ep.LastAt) {
			ep.LastAt = s.At
		}
	}
	switch e.Type() {
	case schemas.TypeViolation:
		var v schemas.Violation
		if json.Unmarshal(e.Data(), &v) != nil {
			return nil
		}
		id = cmp.Or(v.Episode, id)
		ep.Subject, ep.Instance, ep.Rule, ep.Key, ep.Fingerprint = v.Subject, v.Instance, v.Rule, v.Key, v.Fingerprint
		ep.Severity, ep.Summary, ep.State = v.Severity, v.Summary, v.Status
		ep.ActiveAt = timePtr(v.ActiveAt)
		name := alertName(v.Rule, v.Key)
		switch v.Status {
		case schemas.StatusFiring:
			ep.FiredAt = v.FiredAt
			step(Step{Kind: StepObserved, At: v.ActiveAt, Title: name + ": condition true",
				Detail: "first observed true; the evidence is what the rule judged when it fired",
				Status: "warn", Data: v.Evidence})
			detail := v.Description
			if v.Error != "" {
				detail = v.Error
			}
			step(Step{Kind: StepFiring, At: timeOr(v.FiredAt, e.Time()), Title: name + " firing (" + v.Severity + "): " + v.Summary,
				Detail: detail, Status: severityStatus(v.Severity)})
		case schemas.StatusResolved:
			ep.ResolvedAt = v.ResolvedAt
			step(Step{Kind: StepResolved, At: timeOr(v.ResolvedAt, e.Time()), Title: name + " resolved", Status: "ok"})
		default:
			return nil
		}
	case schemas.TypeActionRequested:
		var r schemas.ActionRequest
		if json.Unmarshal(e.Data(), &r) != nil {
			return nil
		}
		id = cmp.Or(id, cmp.Or(episodeOfRef(r.Violation), r.ID))
		ep.Subject, ep.Instance = r.Subject, r.Instance
		if r.Violation != nil {
			ep.Rule, ep.Key, ep.Fingerprint = r.Violation.Rule, r.Violation.Key, r.Violation.Fingerprint
		}
		params, _ := json.Marshal(r.Params)
		what := r.Action + schemas.FormatParams(r.Params)
		if e.ID() == r.ID {
			step(Step{Kind: StepRequested, At: timeOr(&r.RequestedAt, e.Time()), Title: what + " requested by " + r.RequestedBy,
				Detail: r.Reason, RequestID: r.ID, Data: params})
		} else {
			step(Step{Kind: StepResubmitted, At: e.Time(), Title: what + " resubmitted by " + e.Source() + " after a decision",
				RequestID: r.ID, CausedBy: r.ID})
		}
	case schemas.TypeActionCompleted:
		var r schemas.ActionResult
		if json.Unmarshal(e.Data(), &r) != nil {
			return nil
		}
		id = cmp.Or(id, r.RequestID)
		ep.Subject, ep.Instance = r.Subject, r.Instance
		for _, g := range r.Gates {
			step(Step{Kind: StepGate, At: r.StartedAt, Title: g.Gate + ": " + g.Decision, Detail: g.Reason,
				Status: gateStatus(g.Decision), RequestID: r.RequestID, Gate: g.Gate, Decision: g.Decision})
		}
		if r.Outcome == schemas.OutcomeAwaitingApproval {
			step(Step{Kind: StepAwaitingApproval, At: timeOr(&r.FinishedAt, e.Time()), Title: r.Action + " awaits approval",
				Detail: r.Reason, Status: "warn", RequestID: r.RequestID})
			break
		}
		title := fmt.Sprintf("%s %s (%s mode", r.Action, r.Outcome, r.Mode)
		if r.Attempts > 0 {
			title += fmt.Sprintf(", %d attempt(s)", r.Attempts)
		}
		step(Step{Kind: StepCompleted, At: timeOr(&r.FinishedAt, e.Time()), Title: title + ")", Detail: r.Reason,
			Status: outcomeStatus(r.Outcome), RequestID: r.RequestID})
	case schemas.TypeActionVerified:
		var v schemas.ActionVerification
		if json.Unmarshal(e.Data(), &v) != nil {
			return nil
		}
		id = cmp.Or(id, v.RequestID)
		ep.Subject, ep.Instance = v.Subject, v.Instance
		title, status := v.Action+" verified", "ok"
		if !v.Verified {
			title, status = v.Action+" NOT verified", "bad"
		}
		step(Step{Kind: StepVerified, At: timeOr(&v.CheckedAt, e.Time()), Title: title + " (" + v.Expr + ")", Detail: v.Reason,
			Status: status, RequestID: v.RequestID})
	case schemas.TypeDiagnosis:
		var d schemas.Diagnosis
		if json.Unmarshal(e.Data(), &d) != nil {
			return nil
		}
		id = cmp.Or(d.Episode, id)
		ep.Subject, ep.Instance, ep.Rule, ep.Key, ep.Fingerprint = d.Subject, d.Instance, d.Rule, d.Key, d.Fingerprint
		ep.Diagnosis = diagnosisOf(d, withData)
		top := d.Top()
		title := "diagnosed: " + top.ID
		if top.ID != schemas.HypothesisUnknown {
			title += " (" + top.Certainty + ")"
		}
		status := "info"
		if d.Error != "" {
			status = "warn"
		}
		step(Step{Kind: StepDiagnosis, At: timeOr(&d.CreatedAt, e.Time()), Title: title, Detail: cmp.Or(top.Cause, d.Summary), Status: status})
	default:
		return nil
	}
	if id == "" {
		return nil
	}
	ep.ID = id
	return ep
}

func diagnosisOf(d schemas.Diagnosis, withData bool) *Diagnosis {
	out := &Diagnosis{Mode: d.Mode, Model: d.Model, Summary: d.Summary, Error: d.Error, CreatedAt: d.CreatedAt,
		Hypotheses: []Hypothesis{}, Evidence: []Evidence{}}
	for i, h := range d.Hypotheses {
		if i == maxHypotheses {
			break
		}
		out.Hypotheses = append(out.Hypotheses, Hypothesis{ID: h.ID, Cause: h.Cause, Certainty: h.Certainty,
			Supports: nonNil(h.Supports), Contradicts: nonNil(h.Contradicts), SuggestedAction: h.SuggestedAction})
	}
	for _, ev := range d.Evidence {
		item := Evidence{ID: ev.ID, Source: ev.Source, At: ev.At, Truncated: ev.Truncated, Error: ev.Error}
		if withData {
			item.Data = ev.Data
		}
		out.Evidence = append(out.Evidence, item)
	}
	return out
}

// alertName is how a step names an alert: rule[key], or the rule alone.
func alertName(rule, key string) string {
	if key == "" {
		return rule
	}
	return rule + "[" + key + "]"
}

func episodeOfRef(v *schemas.ViolationRef) string {
	if v == nil {
		return ""
	}
	return v.Episode
}

func severityStatus(s string) string {
	if s == schemas.SeverityCritical {
		return "bad"
	}
	return "warn"
}

func gateStatus(decision string) string {
	switch decision {
	case schemas.GatePassed:
		return "ok"
	case schemas.GateHeld:
		return "warn"
	}
	return "bad"
}

func outcomeStatus(outcome string) string {
	switch outcome {
	case schemas.OutcomeSucceeded:
		return "ok"
	case schemas.OutcomeFailed, schemas.OutcomeRejected:
		return "bad"
	}
	return "info"
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func timeOr(t *time.Time, or time.Time) time.Time {
	if t == nil || t.IsZero() {
		return or.UTC()
	}
	return t.UTC()
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
