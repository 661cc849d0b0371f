package eventlog

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/operator-dev/operator/schemas"
)

var update = flag.Bool("update", false, "rewrite testdata/lines.golden")

func TestLineGolden(t *testing.T) {
	at := time.Date(2026, 11, 27, 5, 1, 2, 345000000, time.UTC)
	fired := at
	events := []struct {
		typ  string
		data any
	}{
		{schemas.TypeObservation, schemas.Observation{Subject: "ratelimiter", Instance: "demo", ObservedAt: at,
			Observer: schemas.ObserverInfo{DurationMS: 12.4, Errors: []schemas.ObserverError{{Source: "node n2", Message: "connection refused"}}}, State: []byte(`{}`)}},
		{schemas.TypeViolation, schemas.Violation{Subject: "ratelimiter", Instance: "demo", Rule: "node_down", Key: "n2",
			Fingerprint: "f", Status: "firing", Severity: "critical", Summary: "node n2 is down", Episode: "0123456789abcdef", ActiveAt: at, FiredAt: &fired}},
		{schemas.TypeActionRequested, schemas.ActionRequest{ID: "fedcba9876543210", Subject: "ratelimiter", Instance: "demo", Action: "drain_node",
			Params: map[string]any{"node_id": "n2"}, RequestedBy: "evaluator", RequestedAt: at}},
		{schemas.TypeActionCompleted, schemas.ActionResult{RequestID: "fedcba9876543210", Subject: "ratelimiter", Instance: "demo", Action: "drain_node",
			Outcome: "succeeded", Reason: "node n2 draining", Mode: "execute", Attempts: 1, StartedAt: at, FinishedAt: at}},
		{schemas.TypeActionVerified, schemas.ActionVerification{RequestID: "fedcba9876543210", Subject: "ratelimiter", Instance: "demo", Action: "drain_node",
			Verified: false, Reason: "still up after 30s", CheckedAt: at}},
		{schemas.TypeDiagnosis, schemas.Diagnosis{Subject: "ratelimiter", Instance: "demo", Rule: "clock_skew", Key: "n2", Episode: "0123456789abcdef",
			Mode: schemas.DiagnosisDeterministic, DurationMS: 41.2, Summary: "clock of n2 is 900 ms off",
			Evidence: []schemas.EvidenceItem{{ID: "nodes"}, {ID: "alerts"}, {ID: "hotkeys", Error: "timeout"}},
			Hypotheses: []schemas.Hypothesis{
				{ID: "clock_skew", Cause: "clock of n2 is 900 ms off", Certainty: schemas.CertaintyCertain,
					SuggestedAction: &schemas.SuggestedAction{Action: "drain_node", Params: map[string]any{"node_id": "n2"}}},
				{ID: "redis_latency", Cause: "Redis is slow", Certainty: schemas.CertaintyPossible}},
			CreatedAt: at}},
		{schemas.TypeDiagnosis, schemas.Diagnosis{Subject: "tikv", Instance: "c1", Rule: "store_down", Key: "3", Episode: "e1",
			Mode: schemas.DiagnosisLLM, Model: "claude-x", DurationMS: 2300, Summary: "the cause is unknown",
			Hypotheses: []schemas.Hypothesis{{ID: schemas.HypothesisUnknown, Cause: "the cause is unknown", Certainty: schemas.CertaintyPossible}},
			CreatedAt:  at}},
		{"io.example.other", map[string]any{"x": 1}},
	}
	var lines []string
	for i, ev := range events {
		e, err := schemas.NewEvent(schemas.EventSpec{Type: ev.typ, Source: "/t", Subject: "s", ID: "id" + string(rune('a'+i)), Time: at}, ev.data)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, Line(e))
	}
	got := strings.Join(lines, "\n") + "\n"
	golden := filepath.Join("testdata", "lines.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if got != string(want) {
		t.Errorf("lines differ from %s:\n got:\n%s\nwant:\n%s", golden, got, want)
	}
}
