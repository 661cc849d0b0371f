package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/operator-dev/operator/internal/bus"
	"github.com/operator-dev/operator/internal/bus/bustest"
	"github.com/operator-dev/operator/schemas"
)

const exampleRules = "../../evaluators/testdata/rules.yaml"

func TestRulesCheck(t *testing.T) {
	out, err := run(t, context.Background(), "rules", "check", exampleRules)
	if err != nil || !strings.Contains(out, "ok (subject ratelimiter, 3 rules; fields checked against state.v1.json)") {
		t.Fatalf("good file: %q, %v", out, err)
	}
	// A subject without a state schema loads, and says its paths went
	// unchecked.
	noSchema := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(noSchema, []byte("subject: nothing\nrules:\n  - {name: r, expr: obs.state.x > 1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, context.Background(), "rules", "check", noSchema)
	if err != nil || !strings.Contains(out, "obs.state fields NOT checked: no state schema for nothing") {
		t.Errorf("no state schema: %q, %v", out, err)
	}
	out, err = run(t, context.Background(), "rules", "check", exampleRules, "../../evaluators/testdata/bad-field-path.yaml")
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Fatalf("bad file: err = %v, want exit status 1", err)
	}
	if !strings.Contains(out, `bad-field-path.yaml:5: rule "typo_in_state": expr: field obs.state.redis.conected`) {
		t.Errorf("output lacks the file:line reason:\n%s", out)
	}
}

func TestRulesTest(t *testing.T) {
	out, err := run(t, context.Background(), "rules", "test", "../../evaluators/testdata/rules_test.yaml")
	if err != nil || !strings.Contains(out, "6 passed, 0 failed") {
		t.Fatalf("passing tests: %q, %v", out, err)
	}
	out, err = run(t, context.Background(), "rules", "test", "../../evaluators/testdata/failing_rules_test.yaml")
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 1 || !strings.Contains(out, "FAIL  wrong expectations") {
		t.Fatalf("failing tests: %q, %v", out, err)
	}
}

// demoObservation is an observation of ratelimiter/demo in the shape of
// the example rules' test schema.
func demoObservation(t *testing.T, i int, nodeState string) event.Event {
	t.Helper()
	ts := time.Date(2025, 1, 2, 3, 4, i, 0, time.UTC)
	state := fmt.Sprintf(`{"redis":{"connected":true},"nodes":[{"id":"n1","state":%q,"reachable":%v}]}`, nodeState, nodeState == "up")
	e, err := schemas.NewEvent(schemas.EventSpec{
		Type: schemas.TypeObservation, Source: "/observers/ratelimiter/demo", Subject: "ratelimiter/demo",
		ID: fmt.Sprint("obs-", i), Time: ts,
	}, map[string]any{
		"subject": "ratelimiter", "instance": "demo", "observed_at": ts,
		"observer": map[string]any{"duration_ms": 1, "interval_ms": 1000, "errors": []any{}},
		"state":    json.RawMessage(state),
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestReplayIsByteIdentical(t *testing.T) {
	file := filepath.Join(t.TempDir(), "rec.jsonl")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	w := bus.NewRecordWriter(f)
	for i := range 8 {
		st := "up"
		if i >= 2 && i < 5 {
			st = "down"
		}
		e := demoObservation(t, i, st)
		h, err := bus.Headers(e)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(bus.RecordOf("operator.obs.ratelimiter.demo", e.Time(), h, e.Data())); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()

	for _, args := range [][]string{nil, {"--json"}} {
		argv := append([]string{"replay", "--rules", exampleRules, "--input", file}, args...)
		first, err := run(t, context.Background(), argv...)
		if err != nil {
			t.Fatal(err)
		}
		second, err := run(t, context.Background(), argv...)
		if err != nil {
			t.Fatal(err)
		}
		if first != second {
			t.Fatalf("replay %v differs between runs:\n%s\n---\n%s", args, first, second)
		}
		if len(args) == 0 {
			want := []string{
				"violation firing ratelimiter/demo/node_down/n1 critical",
				"action.requested drain_node ratelimiter/demo",
				"violation resolved ratelimiter/demo/node_down/n1",
			}
			for _, w := range want {
				if !strings.Contains(first, w) {
					t.Errorf("replay output lacks %q:\n%s", w, first)
				}
			}
			continue
		}
		for _, line := range strings.Split(strings.TrimSpace(first), "\n") {
			var e event.Event
			if err := json.Unmarshal([]byte(line), &e); err != nil || e.ID() == "" {
				t.Errorf("--json line is not a CloudEvent: %q: %v", line, err)
			}
		}
	}
}

// TestEvaluateCommand runs `operator evaluate` against an embedded server:
// observations in, a firing violation out, a clean stop on cancel.
func TestEvaluateCommand(t *testing.T) {
	b := bustest.New(t, bustest.WithListener)
	ctx := bustest.Context(t, 60*time.Second)
	// A subject without a state schema, so the bus accepts any state.
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte(`subject: demo
rules:
  - name: node_down
    each: obs.state.nodes
    key: item.id
    expr: item.state == "down"
`), 0o644); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := run(t, rctx, "evaluate", "--nats", b.ClientURL(), "--rules", rules, "--workers", "2")
		done <- err
	}()
	subj, _ := b.Subjects().Observation("demo", "i1")
	for i := range 2 {
		e := demoObservation(t, i, "down")
		var data map[string]any
		_ = json.Unmarshal(e.Data(), &data)
		data["subject"], data["instance"] = "demo", "i1"
		_ = e.SetData(schemas.ContentTypeJSON, data)
		if err := b.Publish(ctx, subj, e); err != nil {
			t.Fatal(err)
		}
	}
	kv, err := b.KV(ctx, schemas.BucketEvaluatorState)
	if err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 30*time.Second, func() bool {
		raw, _, err := kv.Get(ctx, "demo/i1/node_down/n1")
		if err != nil {
			return false
		}
		var r schemas.AlertRecord
		return json.Unmarshal(raw, &r) == nil && r.State == schemas.AlertFiring
	}, "node_down firing in the state bucket")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("evaluate: %v", err)
	}
}
