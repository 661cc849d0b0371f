package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/operator-dev/operator/internal/bus/bustest"
	"github.com/operator-dev/operator/schemas"
)

func TestDiagnoseExplain(t *testing.T) {
	b := bustest.New(t, bustest.WithListener)
	ctx := bustest.Context(t, 20*time.Second)
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, ep := range []string{"abc123", "abd999"} {
		d := schemas.Diagnosis{Subject: "ratelimiter", Instance: "demo", Rule: "clock_skew", Key: "n2", Episode: ep,
			Fingerprint: "ratelimiter/demo/clock_skew/n2", Mode: schemas.DiagnosisDeterministic, DurationMS: 12, Summary: "n2's clock is off",
			Evidence: []schemas.EvidenceItem{
				{ID: "recent", Source: "the last 3 observations", At: at, Data: json.RawMessage(`{"nodes":[{"id":"n2","clock_offset_ms":2000}]}`)},
				{ID: "registry", Source: "GET http://n1/api/v1/nodes", At: at, Error: "context deadline exceeded"}},
			Hypotheses: []schemas.Hypothesis{{ID: "clock_skew", Cause: "n2's clock is off", Certainty: schemas.CertaintyCertain,
				Supports: []string{"recent"}, Contradicts: []string{},
				SuggestedAction: &schemas.SuggestedAction{Action: "drain_node", Params: map[string]any{"node_id": "n2"}}}},
			CreatedAt: at}
		e, err := schemas.NewEvent(schemas.EventSpec{Type: schemas.TypeDiagnosis, Source: "/diagnosis/t", ID: "d-" + ep, Time: at, CorrelationID: ep}, d)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Publish(ctx, "operator.diagnosis.ratelimiter.demo", e); err != nil {
			t.Fatal(err)
		}
	}
	out, err := run(t, ctx, "diagnose", "explain", "abc", "--nats", b.ClientURL())
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"episode abc123: ratelimiter/demo clock_skew[n2]", "1. CERTAIN clock_skew: n2's clock is off",
		"supported by:    recent", "suggests:        drain_node{node_id=n2} (operator act ratelimiter demo drain_node node_id=n2)",
		`"clock_offset_ms": 2000`, "registry: GET http://n1/api/v1/nodes", "FAILED: context deadline exceeded"} {
		if !strings.Contains(out, want) {
			t.Errorf("explain lacks %q:\n%s", want, out)
		}
	}
	out, err = run(t, ctx, "diagnose", "explain", "abc", "--json", "--nats", b.ClientURL())
	var d schemas.Diagnosis
	if err != nil || json.Unmarshal([]byte(out), &d) != nil || d.Episode != "abc123" {
		t.Errorf("--json: %v\n%s", err, out)
	}
	if _, err := run(t, context.Background(), "diagnose", "explain", "ab", "--nats", b.ClientURL()); err == nil || !strings.Contains(err.Error(), "matches 2 episodes") {
		t.Errorf("an ambiguous prefix: %v", err)
	}
	if _, err := run(t, context.Background(), "diagnose", "explain", "zzz", "--nats", b.ClientURL()); err == nil || !strings.Contains(err.Error(), "no diagnosis") {
		t.Errorf("an unknown episode: %v", err)
	}
}
