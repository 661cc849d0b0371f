package schemas

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestValidToken(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"ratelimiter", true},
		{"node-1", true},
		{"user:42", true},
		{"", false},
		{"a.b", false},
		{"a*", false},
		{">", false},
		{"a b", false},
		{"a\tb", false},
		{"a\nb", false},
		{"\x00", false},
	}
	for _, tt := range tests {
		err := ValidToken(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ValidToken(%q) = %v, want ok=%v", tt.in, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidToken) {
			t.Errorf("ValidToken(%q) error %v does not wrap ErrInvalidToken", tt.in, err)
		}
	}
}

func TestSubjects(t *testing.T) {
	var s Subjects
	got, err := s.Violation("ratelimiter", "demo", "node_down")
	if err != nil || got != "operator.violation.ratelimiter.demo.node_down" {
		t.Fatalf("Violation = %q, %v", got, err)
	}
	got, _ = Subjects{Prefix: "stg.op"}.ActionRequested("tikv", "c1")
	if got != "stg.op.action.requested.tikv.c1" {
		t.Fatalf("ActionRequested with prefix = %q", got)
	}
	if _, err := s.Observation("ratelimiter", "de.mo"); err == nil || !strings.Contains(err.Error(), "de.mo") {
		t.Fatalf("Observation with a dotted instance: err = %v, want a clear refusal naming it", err)
	}
	if _, err := s.Observations("*"); err == nil {
		t.Fatal("Observations(\"*\") accepted a wildcard subject")
	}
	if f, _ := s.Observations(""); f != "operator.obs.>" {
		t.Fatalf("Observations(\"\") = %q", f)
	}
	if f, _ := s.Observations("tikv"); f != "operator.obs.tikv.>" {
		t.Fatalf("Observations(tikv) = %q", f)
	}
	if err := (Subjects{Prefix: "bad prefix"}).Validate(); err == nil {
		t.Fatal("prefix with a space validated")
	}
	for name, subs := range s.StreamSubjects() {
		if len(subs) != 1 || !strings.HasPrefix(subs[0], "operator.") {
			t.Errorf("stream %s subjects %v", name, subs)
		}
	}
}

func TestStreamForCoversEveryType(t *testing.T) {
	for _, typ := range []string{TypeObservation, TypeViolation, TypeActionRequested, TypeActionCompleted, TypeActionVerified, TypeDiagnosis} {
		if _, ok := StreamFor(typ); !ok {
			t.Errorf("StreamFor(%s) has no stream", typ)
		}
		if _, ok := SchemaFile(typ); !ok {
			t.Errorf("SchemaFile(%s) has no schema", typ)
		}
	}
	if _, ok := StreamFor("io.other"); ok {
		t.Error("StreamFor accepted an unknown type")
	}
}

func TestDeriveID(t *testing.T) {
	if DeriveID("ab", "c") == DeriveID("a", "bc") {
		t.Fatal("DeriveID is ambiguous across part boundaries")
	}
	if DeriveID("x", "y") != DeriveID("x", "y") {
		t.Fatal("DeriveID is not deterministic")
	}
	if len(DeriveID("x")) != 32 {
		t.Fatalf("DeriveID length %d", len(DeriveID("x")))
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGoTypesMatchSchemas marshals a fully populated value of every Go type
// and validates it, so the types and the schema files cannot drift apart.
func TestGoTypesMatchSchemas(t *testing.T) {
	v, err := NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC)
	later := now.Add(time.Minute)
	tests := []struct {
		typ  string
		data any
	}{
		{TypeObservation, Observation{Subject: "demo", Instance: "demo", ObservedAt: now,
			Observer: ObserverInfo{DurationMS: 1.5, IntervalMS: 1000, Errors: []ObserverError{{Source: "node n2", Message: "timeout"}}},
			State:    json.RawMessage(`{"nodes":[]}`)}},
		{TypeViolation, Violation{Subject: "ratelimiter", Instance: "demo", Rule: "node_down", Key: "n1",
			Fingerprint: "ratelimiter/demo/node_down/n1", Status: StatusFiring, Severity: SeverityCritical,
			Summary: "node n1 is down", Labels: map[string]string{"team": "sre"}, Evidence: json.RawMessage(`{"id":"n1"}`),
			Episode: "e1", ActiveAt: now, FiredAt: &now}},
		{TypeViolation, Violation{Subject: "ratelimiter", Instance: "demo", Rule: "node_down", Key: "n1",
			Fingerprint: "f", Status: StatusResolved, Severity: SeverityCritical, Summary: "s", Episode: "e1",
			ActiveAt: now, FiredAt: &now, ResolvedAt: &later}},
		{TypeActionRequested, ActionRequest{ID: "r1", Subject: "ratelimiter", Instance: "demo", Action: "drain_node",
			Params: map[string]any{"node_id": "n1"}, Reason: "clock skew", RequestedBy: "evaluator", RequestedAt: now,
			Violation: &ViolationRef{Fingerprint: "f", Episode: "e1", Rule: "clock_skew", Key: "n1"}}},
		{TypeActionCompleted, ActionResult{RequestID: "r1", Subject: "ratelimiter", Instance: "demo", Action: "drain_node",
			Outcome: OutcomeSucceeded, Reason: "drained", Mode: ModeExecute, Attempts: 1, StartedAt: now, FinishedAt: later}},
		{TypeActionVerified, ActionVerification{RequestID: "r1", Subject: "ratelimiter", Instance: "demo", Action: "drain_node",
			Verified: true, Expr: "true", Reason: "held", Observations: 2, CheckedAt: later}},
		{TypeDiagnosis, Diagnosis{Subject: "tikv", Instance: "c1", Rule: "store_disconnected", Key: "3", Episode: "e1",
			Fingerprint: "tikv/c1/store_disconnected/3", Mode: DiagnosisDeterministic, Summary: "store 3 lost heartbeats",
			Evidence: []EvidenceItem{{ID: "stores", Source: "GET /pd/api/v1/stores", At: now, Data: json.RawMessage(`{"count":3}`)},
				{ID: "p99", Source: "prometheus", At: now, Error: "no Prometheus configured"}},
			Hypotheses: []Hypothesis{{ID: "store_lost", Cause: "store 3 is down", Certainty: CertaintyLikely,
				Supports: []string{"stores"}, Contradicts: []string{},
				SuggestedAction: &SuggestedAction{Action: "evict_leader", Params: map[string]any{"store_id": "3"}}}},
			CreatedAt: now}},
	}
	for _, tt := range tests {
		if err := v.Validate(tt.typ, mustJSON(t, tt.data)); err != nil {
			t.Errorf("%s: %v", tt.typ, err)
		}
	}
}

func TestValidateRefuses(t *testing.T) {
	v, err := NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, typ, data, want string
	}{
		{"not json", TypeObservation, `{`, "not JSON"},
		{"missing field", TypeViolation, `{"subject":"s"}`, "missing"},
		{"unknown outcome", TypeActionCompleted, `{"request_id":"r","subject":"s","instance":"i","action":"a","outcome":"maybe","reason":"x","mode":"execute","attempts":0,"started_at":"2026-01-01T00:00:00Z","finished_at":"2026-01-01T00:00:00Z"}`, "/outcome"},
		{"bad time", TypeActionRequested, `{"id":"r","subject":"s","instance":"i","action":"a","params":{},"requested_by":"me","requested_at":"yesterday"}`, "requested_at"},
		{"dotted instance", TypeObservation, `{"subject":"s","instance":"a.b","observed_at":"2026-01-01T00:00:00Z","observer":{"duration_ms":0,"errors":[]},"state":{}}`, "/instance"},
		{"resolved without resolved_at", TypeViolation, `{"subject":"s","instance":"i","rule":"r","key":"","fingerprint":"f","status":"resolved","severity":"info","summary":"x","episode":"e","active_at":"2026-01-01T00:00:00Z"}`, "resolved_at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Validate(tt.typ, []byte(tt.data))
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
	if err := v.Validate("io.other", []byte(`{}`)); !errors.Is(err, ErrUnknownType) {
		t.Errorf("unknown type: %v", err)
	}
}

func TestObservationStateIsCheckedAgainstTheSubjectSchema(t *testing.T) {
	v, err := NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	if !v.HasStateSchema("ratelimiter") || v.HasStateSchema("nosuch") {
		t.Fatal("HasStateSchema")
	}
	obs := `{"subject":"ratelimiter","instance":"demo","observed_at":"2026-01-01T00:00:00Z","observer":{"duration_ms":1,"errors":[]},"state":%s}`
	good := `{"redis":{"reachable":true,"ping_ms":0.2,"keys_without_ttl":{"count":0,"sample":[],"scanned":10,"complete":true}},
		"nodes":[{"id":"n1","address":"http://127.0.0.1:8081","state":"up","reachable":true,"redis_up":true,"draining":false,
		"check_p99_ms":0.8,"redis_p99_ms":0.5,"checks_per_s":100,"denied_per_s":3,"clock_offset_ms":-1,"heartbeat_age_ms":400}],
		"keys":[{"key":"user:42","limit":100,"window_ms":60000,"algorithm":"gcra","count_by_node":{"n1":42},"drift":0,
		"allowed_max_window":42,"allowed_last_window":42,"checks_per_s":1,"denied_per_s":0,"ttl_ms":59000,"blocked":false}],
		"limits":[],"blocks":[],"summary":{"nodes_total":1,"nodes_up":1,"keys_tracked":1,"median_key_checks_per_s":1}}`
	if err := v.Validate(TypeObservation, []byte(fmt.Sprintf(obs, good))); err != nil {
		t.Fatalf("good state refused: %v", err)
	}
	bad := strings.Replace(good, `"state":"up"`, `"state":"healthy"`, 1)
	err = v.Validate(TypeObservation, []byte(fmt.Sprintf(obs, bad)))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "/nodes/0/state") {
		t.Fatalf("bad node state: %v", err)
	}
}
