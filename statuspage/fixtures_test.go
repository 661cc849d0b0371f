package statuspage

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/operator-dev/operator/evaluators"
	"github.com/operator-dev/operator/internal/bus"
	"github.com/operator-dev/operator/internal/bus/bustest"
	"github.com/operator-dev/operator/schemas"
	"github.com/operator-dev/operator/subjects"
)

// t0 is when the fixtures' episode starts.
var t0 = time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC)

// A fixture is an event and the NATS subject it is published on.
type fixture struct {
	subject string
	e       event.Event
}

// toyRules is the rule set the tests give the page: rule r waits 10s
// before firing and keeps firing 5s.
const toyRules = `subject: toy
rules:
  - name: r
    expr: obs.state.v > 1.0
    for: 10s
    keep_firing_for: 5s
    severity: critical
    summary: 'v is high'
`

// toySubject has one view over its observations' state.items.
func toySubject() subjects.Subject {
	return subjects.Subject{Name: "toy", Views: []subjects.View{{
		Name: "items", Title: "Items", Rows: "obs.state.items", OrderBy: "row.n", Descending: true, Limit: 2,
		Columns: []subjects.Column{{Title: "name", Expr: "row.name"}, {Title: "n", Expr: "row.n", Unit: "/s"}},
		Status:  `row.n > 5.0 ? "bad" : "ok"`,
	}}}
}

func newEvent(t testing.TB, typ, id, corr, cause string, at time.Time, data any) event.Event {
	t.Helper()
	e, err := schemas.NewEvent(schemas.EventSpec{Type: typ, Source: "/tests", Subject: "toy/i1", ID: id, Time: at,
		CorrelationID: corr, CausationID: cause}, data)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// episodeEvents is one whole episode of toy/i1 rule r key k, in the order
// the pipeline stores it: fired, remediated through every gate, diagnosed,
// verified, resolved.
func episodeEvents(t testing.TB, ep, summary string) []fixture {
	t.Helper()
	var s schemas.Subjects
	must := func(subj string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return subj
	}
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	fired, resolved := at(3000), at(6000)
	v := schemas.Violation{Subject: "toy", Instance: "i1", Rule: "r", Key: "k", Fingerprint: "toy/i1/r/k",
		Status: schemas.StatusFiring, Severity: schemas.SeverityCritical, Summary: summary, Episode: ep,
		ActiveAt: t0, FiredAt: &fired, Evidence: json.RawMessage(`{"v":2}`)}
	res := v
	res.Status, res.FiredAt, res.ResolvedAt = schemas.StatusResolved, &fired, &resolved
	reqID := "req-" + ep
	req := schemas.ActionRequest{ID: reqID, Subject: "toy", Instance: "i1", Action: "poke", Params: map[string]any{"key": "k"},
		RequestedBy: "/evaluators/e1/r", RequestedAt: fired,
		Violation: &schemas.ViolationRef{Fingerprint: "toy/i1/r/k", Episode: ep, Rule: "r", Key: "k"}}
	var gates []schemas.GateDecision
	for _, g := range []string{schemas.GateCatalog, schemas.GateKillSwitch, schemas.GateMode, schemas.GatePrecondition,
		schemas.GateBudget, schemas.GateApproval, schemas.GateLedger} {
		gates = append(gates, schemas.GateDecision{Gate: g, Decision: schemas.GatePassed})
	}
	result := schemas.ActionResult{RequestID: reqID, Subject: "toy", Instance: "i1", Action: "poke", Outcome: schemas.OutcomeSucceeded,
		Reason: "executed in 1 attempt(s)", Mode: schemas.ModeExecute, Attempts: 1, StartedAt: at(3500), FinishedAt: at(4000), Gates: gates}
	verified := schemas.ActionVerification{RequestID: reqID, Subject: "toy", Instance: "i1", Action: "poke", Verified: true,
		Expr: "true", Reason: "verify held", Observations: 1, CheckedAt: at(5000)}
	diag := schemas.Diagnosis{Subject: "toy", Instance: "i1", Rule: "r", Key: "k", Episode: ep, Fingerprint: "toy/i1/r/k",
		Mode: schemas.DiagnosisDeterministic, Summary: "v rose", DurationMS: 1, CreatedAt: at(3200),
		Evidence: []schemas.EvidenceItem{{ID: "recent", Source: "the last observations", At: fired, Data: json.RawMessage(`{"v":[1,2]}`)},
			{ID: "api", Source: "GET /x", At: fired, Error: "connection refused"}},
		Hypotheses: []schemas.Hypothesis{{ID: "load", Cause: "load rose", Certainty: schemas.CertaintyLikely,
			Supports: []string{"recent"}, Contradicts: []string{}, SuggestedAction: &schemas.SuggestedAction{Action: "poke"}}}}
	return []fixture{
		{must(s.Violation("toy", "i1", "r")), newEvent(t, schemas.TypeViolation, "vf-"+ep, ep, "obs-1", fired, v)},
		{must(s.ActionRequested("toy", "i1")), newEvent(t, schemas.TypeActionRequested, reqID, ep, "vf-"+ep, fired, req)},
		{must(s.Diagnosis("toy", "i1")), newEvent(t, schemas.TypeDiagnosis, "dg-"+ep, ep, "vf-"+ep, at(3200), diag)},
		{must(s.ActionCompleted("toy", "i1")), newEvent(t, schemas.TypeActionCompleted, "done-"+ep, ep, reqID, at(4000), result)},
		{must(s.ActionVerified("toy", "i1")), newEvent(t, schemas.TypeActionVerified, "ver-"+ep, ep, reqID, at(5000), verified)},
		{must(s.Violation("toy", "i1", "r")), newEvent(t, schemas.TypeViolation, "vr-"+ep, ep, "obs-9", resolved, res)},
	}
}

// observation is an observation of toy/i1 made at at.
func observation(t testing.TB, at time.Time, items string) fixture {
	t.Helper()
	var s schemas.Subjects
	subj, err := s.Observation("toy", "i1")
	if err != nil {
		t.Fatal(err)
	}
	o := schemas.Observation{Subject: "toy", Instance: "i1", ObservedAt: at,
		Observer: schemas.ObserverInfo{DurationMS: 2, IntervalMS: 1000, Errors: []schemas.ObserverError{}},
		State:    json.RawMessage(`{"v":2,"items":` + items + `}`)}
	return fixture{subj, newEvent(t, schemas.TypeObservation, "obs-"+at.Format("150405.000"), "", "", at, o)}
}

func publish(t testing.TB, b *bus.Bus, fs ...fixture) {
	t.Helper()
	ctx := bustest.Context(t, 10*time.Second)
	for _, f := range fs {
		if err := b.Publish(ctx, f.subject, f.e); err != nil {
			t.Fatalf("publish %s: %v", f.e.ID(), err)
		}
	}
}

func putJSON(t testing.TB, b *bus.Bus, bucket, key string, v any) {
	t.Helper()
	ctx := bustest.Context(t, 10*time.Second)
	kv, err := b.KV(ctx, bucket)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, key, raw); err != nil {
		t.Fatal(err)
	}
}

// testPage is a page on a fresh bus, served by an httptest server.
type testPage struct {
	b    *bus.Bus
	page *Page
	srv  *httptest.Server
}

func newTestPage(t *testing.T, cfg Config) *testPage {
	t.Helper()
	b := bustest.New(t)
	rs, err := evaluators.ParseRuleSet("toy_rules.yaml", []byte(toyRules), evaluators.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuleSets = append(cfg.RuleSets, rs)
	cfg.Subjects = append(cfg.Subjects, toySubject())
	p, err := New(context.Background(), cfg, b)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.Handler())
	t.Cleanup(srv.Close)
	return &testPage{b: b, page: p, srv: srv}
}
