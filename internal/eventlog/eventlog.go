// Package eventlog renders Operator events as one human-readable line each,
// for `operator events tail` and the live log of `operator up`. It imports
// only the contracts in schemas and the CloudEvents SDK.
package eventlog

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/operator-dev/operator/schemas"
)

// Line renders one event: time (UTC, event time), a short kind, and the few
// fields that matter for that type. Unknown types and undecodable data still
// render, with the raw type and subject.
func Line(e event.Event) string {
	ts := e.Time().UTC().Format("15:04:05.000")
	data := e.Data()
	switch e.Type() {
	case schemas.TypeObservation:
		var o schemas.Observation
		if json.Unmarshal(data, &o) == nil {
			s := fmt.Sprintf("%s observation  %s/%s in %.0fms", ts, o.Subject, o.Instance, o.Observer.DurationMS)
			if n := len(o.Observer.Errors); n > 0 {
				s += fmt.Sprintf(" with %d error(s): %s: %s", n, o.Observer.Errors[0].Source, o.Observer.Errors[0].Message)
			}
			return s
		}
	case schemas.TypeViolation:
		var v schemas.Violation
		if json.Unmarshal(data, &v) == nil {
			s := fmt.Sprintf("%s violation    %-8s %-8s %s/%s %s", ts, strings.ToUpper(v.Status), v.Severity, v.Subject, v.Instance, v.Rule)
			if v.Key != "" {
				s += "[" + v.Key + "]"
			}
			s += fmt.Sprintf(" %q episode=%s", v.Summary, short(v.Episode))
			if v.Error != "" {
				s += " error=" + fmt.Sprintf("%q", v.Error)
			}
			return s
		}
	case schemas.TypeActionRequested:
		var r schemas.ActionRequest
		if json.Unmarshal(data, &r) == nil {
			return fmt.Sprintf("%s action       REQUESTED %s/%s %s%s id=%s by=%s", ts, r.Subject, r.Instance, r.Action, schemas.FormatParams(r.Params), short(r.ID), r.RequestedBy)
		}
	case schemas.TypeActionCompleted:
		var r schemas.ActionResult
		if json.Unmarshal(data, &r) == nil {
			return fmt.Sprintf("%s action       %s %s/%s %s id=%s mode=%s %q", ts, strings.ToUpper(r.Outcome), r.Subject, r.Instance, r.Action, short(r.RequestID), r.Mode, r.Reason)
		}
	case schemas.TypeActionVerified:
		var r schemas.ActionVerification
		if json.Unmarshal(data, &r) == nil {
			verdict := "VERIFIED"
			if !r.Verified {
				verdict = "NOT-VERIFIED"
			}
			return fmt.Sprintf("%s action       %s %s/%s %s id=%s %q", ts, verdict, r.Subject, r.Instance, r.Action, short(r.RequestID), r.Reason)
		}
	case schemas.TypeDiagnosis:
		var d schemas.Diagnosis
		if json.Unmarshal(data, &d) == nil {
			return diagnosisLine(ts, d)
		}
	}
	return fmt.Sprintf("%s %s subject=%s id=%s", ts, e.Type(), e.Subject(), e.ID())
}

// short abbreviates a hex id for display; ids are still unique enough to grep.
func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// diagnosisLine says what a diagnosis concluded: the top hypothesis, how
// sure, what it suggests, and how much evidence it rests on.
func diagnosisLine(ts string, d schemas.Diagnosis) string {
	top := d.Top()
	failed := 0
	for _, e := range d.Evidence {
		if e.Error != "" {
			failed++
		}
	}
	how := d.Mode
	if d.Model != "" {
		how += " " + d.Model
	}
	line := fmt.Sprintf("%s diagnosis    %s/%s %s[%s] %s %s %q", ts, d.Subject, d.Instance, d.Rule, d.Key,
		strings.ToUpper(orUnknown(top.Certainty)), top.ID, top.Cause)
	if a := top.SuggestedAction; a != nil {
		line += " suggests " + a.Action + schemas.FormatParams(a.Params)
	}
	line += fmt.Sprintf(" (%d evidence", len(d.Evidence))
	if failed > 0 {
		line += fmt.Sprintf(", %d failed", failed)
	}
	if n := len(d.Hypotheses) - 1; n > 0 {
		line += fmt.Sprintf(", %d other hypothes%s", n, map[bool]string{true: "is", false: "es"}[n == 1])
	}
	return line + fmt.Sprintf("; %s in %.0fms) episode=%s", how, d.DurationMS, short(d.Episode))
}

func orUnknown(s string) string {
	if s == "" {
		return schemas.HypothesisUnknown
	}
	return s
}
