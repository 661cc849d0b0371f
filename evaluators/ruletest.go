package evaluators

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"go.yaml.in/yaml/v3"

	"github.com/operator-dev/operator/schemas"
)

// TestFile is a rule test file, in the spirit of `promtool test rules`:
//
//	rule_files: [rules.yaml]        # relative to the test file
//	tests:
//	  - name: node goes down
//	    subject: ratelimiter        # default: the rule files' only subject
//	    instance: demo              # default: test
//	    interval: 1s                # default: 1s
//	    observations:               # one per interval from 0s
//	      - state: {nodes: [...]}
//	        repeat: 3               # this observation, 3 intervals in a row
//	      - missing: true           # no observation (staleness is checked)
//	        repeat: 4
//	      - state: {...}
//	        errors: [{source: redis, message: timeout}]   # observer.errors
//	    expect:
//	      - at: 4s                  # a multiple of interval
//	        firing: [{rule: node_down, key: n1}]
//	        pending: []
//	        resolved: [{rule: node_down, key: n2, summary: "..."}]
//	        actions: [{action: drain_node, params: {node_id: n1}}]
//
// A list that is given must match exactly (an empty list: none); a list that
// is left out is not checked. Within an alert, severity, summary and labels
// are compared only when given. firing, pending and resolved are the alert
// states after the observation at `at`; actions are the action requests
// published by that observation. The clock runs to the latest `at`, with no
// observations after the last one given.
type TestFile struct {
	RuleFiles []string   `yaml:"rule_files"`
	Tests     []RuleTest `yaml:"tests"`
	// Extensions holds top-level keys starting with "x-": building blocks
	// for YAML anchors, as in Compose files. They are not read otherwise.
	Extensions map[string]yaml.Node `yaml:",inline"`
}

// RuleTest is one test case of a TestFile.
type RuleTest struct {
	Name         string            `yaml:"name"`
	Subject      string            `yaml:"subject"`
	Instance     string            `yaml:"instance"`
	Interval     Duration          `yaml:"interval"`
	Observations []TestObservation `yaml:"observations"`
	Expect       []TestExpectation `yaml:"expect"`
}

// TestObservation is one observation, or a run of identical ones.
type TestObservation struct {
	State   map[string]any          `yaml:"state"`
	Errors  []schemas.ObserverError `yaml:"errors"`
	Repeat  int                     `yaml:"repeat"`
	Missing bool                    `yaml:"missing"`
}

// TestExpectation is what must hold after the observation at At.
type TestExpectation struct {
	At       Duration      `yaml:"at"`
	Firing   *[]TestAlert  `yaml:"firing"`
	Pending  *[]TestAlert  `yaml:"pending"`
	Resolved *[]TestAlert  `yaml:"resolved"`
	Actions  *[]TestAction `yaml:"actions"`
}

// TestAlert names an alert and, optionally, what its violation says.
type TestAlert struct {
	Rule     string            `yaml:"rule"`
	Key      string            `yaml:"key"`
	Severity string            `yaml:"severity"`
	Summary  string            `yaml:"summary"`
	Labels   map[string]string `yaml:"labels"`
}

// TestAction is an expected action request.
type TestAction struct {
	Action string         `yaml:"action"`
	Key    string         `yaml:"key"`
	Params map[string]any `yaml:"params"`
}

// Duration is a time.Duration written as "1s", "500ms" in YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: invalid duration %q", n.Line, n.Value)
	}
	if v < 0 {
		return fmt.Errorf("line %d: negative duration %q", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// RunTests runs rule test files and writes a report to w. It returns false
// when a test failed, and an error when a file cannot be run at all (which
// is also reported to w).
func RunTests(ctx context.Context, w io.Writer, opts LoadOptions, files ...string) (bool, error) {
	ok := true
	var errs []error
	passed, failed := 0, 0
	for _, f := range files {
		fmt.Fprintf(w, "Unit Testing: %s\n", f)
		p, fl, err := runTestFile(ctx, w, opts, f)
		passed += p
		failed += fl
		if err != nil {
			fmt.Fprintf(w, "  ERROR: %s\n", strings.ReplaceAll(err.Error(), "\n", "\n         "))
			errs = append(errs, err)
			ok = false
		}
		if fl > 0 {
			ok = false
		}
	}
	fmt.Fprintf(w, "%d passed, %d failed\n", passed, failed)
	return ok, errors.Join(errs...)
}

func runTestFile(ctx context.Context, w io.Writer, opts LoadOptions, file string) (passed, failed int, err error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0, 0, fmt.Errorf("read test file: %w", err)
	}
	var tf TestFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&tf); err != nil {
		return 0, 0, fmt.Errorf("%s: %w", file, err)
	}
	var unknown []string
	for k := range tf.Extensions {
		if !strings.HasPrefix(k, "x-") {
			unknown = append(unknown, strconv.Quote(k))
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return 0, 0, fmt.Errorf("%s: unknown field %s (only x- extension fields may be added)", file, strings.Join(unknown, ", "))
	}
	if len(tf.RuleFiles) == 0 {
		return 0, 0, fmt.Errorf("%s: rule_files is empty", file)
	}
	paths := make([]string, len(tf.RuleFiles))
	for i, rf := range tf.RuleFiles {
		paths[i] = rf
		if !filepath.IsAbs(rf) {
			paths[i] = filepath.Join(filepath.Dir(file), rf)
		}
	}
	sets, err := LoadRuleSets(opts, paths...)
	if err != nil {
		return 0, 0, err
	}
	for i := range tf.Tests {
		tc := &tf.Tests[i]
		problems, err := runTest(ctx, file, sets, tc)
		if err != nil {
			problems = append(problems, err.Error())
		}
		if len(problems) == 0 {
			fmt.Fprintf(w, "  PASS  %s\n", tc.Name)
			passed++
			continue
		}
		fmt.Fprintf(w, "  FAIL  %s\n", tc.Name)
		for _, p := range problems {
			fmt.Fprintf(w, "        %s\n", strings.ReplaceAll(p, "\n", "\n        "))
		}
		failed++
	}
	return passed, failed, nil
}

// tick is what the test clock saw at one interval.
type tick struct {
	alerts []testAlertState
	events []event.Event
}

type testAlertState struct {
	rule, key string
	state     State
	x         alertExtra
}

// runTest runs one test on a fresh engine and in-memory store and returns
// the failed expectations, one readable diff each.
func runTest(ctx context.Context, file string, sets []*RuleSet, tc *RuleTest) ([]string, error) {
	subjects := map[string]*RuleSet{}
	for _, rs := range sets {
		subjects[rs.Subject] = rs
	}
	subject := tc.Subject
	if subject == "" {
		if len(subjects) != 1 {
			return nil, fmt.Errorf("subject is required: the rule files name %d subjects", len(subjects))
		}
		subject = sets[0].Subject
	}
	if subjects[subject] == nil {
		return nil, fmt.Errorf("no rule file for subject %q", subject)
	}
	instance := tc.Instance
	if instance == "" {
		instance = "test"
	}
	interval := time.Duration(tc.Interval)
	if interval == 0 {
		interval = time.Second
	}

	// Expand the observations to one slot per interval.
	var slots []*TestObservation
	for i := range tc.Observations {
		o := &tc.Observations[i]
		n := o.Repeat
		if n <= 0 {
			n = 1
		}
		if !o.Missing && o.State == nil {
			return nil, fmt.Errorf("observations[%d]: state is required (or missing: true)", i)
		}
		for range n {
			slots = append(slots, o)
		}
	}
	last := len(slots) - 1
	for _, ex := range tc.Expect {
		d := time.Duration(ex.At)
		if d%interval != 0 {
			return nil, fmt.Errorf("expect at %s: not a multiple of the interval %s", d, interval)
		}
		last = max(last, int(d/interval))
	}

	store := &MemoryStore{}
	var pending []event.Event
	pub := schemas.PublisherFunc(func(_ context.Context, _ string, e event.Event) error {
		pending = append(pending, e)
		return nil
	})
	eng, err := NewEngine(Config{WorkerID: "rules-test"}, sets, store, pub)
	if err != nil {
		return nil, err
	}
	ticks := make([]tick, last+1)
	for i := 0; i <= last; i++ {
		now := testEpoch.Add(time.Duration(i) * interval)
		if i < len(slots) && !slots[i].Missing {
			ev, err := testObservation(file, tc, subject, instance, i, now, interval, slots[i])
			if err != nil {
				return nil, err
			}
			if rs := subjects[subject]; rs.state != nil {
				if err := rs.state.Validate(mustJSONAny(slots[i].State)); err != nil {
					return nil, fmt.Errorf("observation at %s: state does not match the state schema %s: %v", time.Duration(i)*interval, rs.state.Name(), err)
				}
			}
			if err := eng.Observe(ctx, ev, now); err != nil {
				return nil, fmt.Errorf("observation at %s: %w", time.Duration(i)*interval, err)
			}
		} else if err := eng.CheckStale(ctx, now); err != nil {
			return nil, fmt.Errorf("staleness check at %s: %w", time.Duration(i)*interval, err)
		}
		alerts, err := snapshot(ctx, store, subject, instance)
		if err != nil {
			return nil, err
		}
		ticks[i] = tick{alerts: alerts, events: pending}
		pending = nil
	}

	var problems []string
	for _, ex := range tc.Expect {
		tk := ticks[int(time.Duration(ex.At)/interval)]
		where := fmt.Sprintf("at %s", time.Duration(ex.At))
		for _, c := range []struct {
			name  string
			state State
			want  *[]TestAlert
		}{{"firing", Firing, ex.Firing}, {"pending", Pending, ex.Pending}, {"resolved", Resolved, ex.Resolved}} {
			if c.want == nil {
				continue
			}
			problems = append(problems, diffAlerts(where, c.name, c.state, *c.want, tk.alerts)...)
		}
		if ex.Actions != nil {
			problems = append(problems, diffActions(where, *ex.Actions, tk.events)...)
		}
	}
	return problems, nil
}

// testEpoch is 0s on the test clock.
var testEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func mustJSONAny(v any) any {
	b, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

func testObservation(file string, tc *RuleTest, subject, instance string, i int, now time.Time, interval time.Duration, o *TestObservation) (event.Event, error) {
	state, err := json.Marshal(o.State)
	if err != nil {
		return event.Event{}, fmt.Errorf("observation %d: %w", i, err)
	}
	errs := o.Errors
	if errs == nil {
		errs = []schemas.ObserverError{}
	}
	data := schemas.Observation{
		Subject: subject, Instance: instance, ObservedAt: now,
		Observer: schemas.ObserverInfo{IntervalMS: interval.Milliseconds(), Errors: errs},
		State:    state,
	}
	return schemas.NewEvent(schemas.EventSpec{
		Type:    schemas.TypeObservation,
		Source:  "/observers/" + subject + "/" + instance,
		Subject: subject + "/" + instance,
		ID:      schemas.DeriveID(file, tc.Name, fmt.Sprint(i)),
		Time:    now,
	}, data)
}

// snapshot reads every alert of one instance from the store.
func snapshot(ctx context.Context, s *MemoryStore, subject, instance string) ([]testAlertState, error) {
	keys, err := s.Keys(ctx)
	if err != nil {
		return nil, err
	}
	prefix := subject + "/" + instance + "/"
	var out []testAlertState
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		raw, _, err := s.Get(ctx, k)
		if err != nil {
			return nil, err
		}
		var rec schemas.AlertRecord
		if err := json.Unmarshal(raw, &rec); err != nil {
			return nil, err
		}
		a, x, err := decodeAlert(raw)
		if err != nil {
			return nil, err
		}
		out = append(out, testAlertState{rule: rec.Rule, key: rec.Key, state: a.State, x: x})
	}
	return out, nil
}

func alertName(rule, key string) string {
	if key == "" {
		return rule
	}
	return rule + " " + key
}

func diffAlerts(where, name string, st State, want []TestAlert, got []testAlertState) []string {
	have := map[string]testAlertState{}
	for _, a := range got {
		if a.state == st {
			have[a.rule+"\x00"+a.key] = a
		}
	}
	var lines []string
	seen := map[string]bool{}
	for _, w := range want {
		k := w.Rule + "\x00" + w.Key
		seen[k] = true
		a, ok := have[k]
		if !ok {
			lines = append(lines, fmt.Sprintf("- %s  (expected %s, is %s)", alertName(w.Rule, w.Key), name, stateOfIn(w.Rule, w.Key, got)))
			continue
		}
		if w.Severity != "" && w.Severity != a.x.Severity {
			lines = append(lines, fmt.Sprintf("~ %s  severity %q, want %q", alertName(w.Rule, w.Key), a.x.Severity, w.Severity))
		}
		if w.Summary != "" && w.Summary != a.x.Summary {
			lines = append(lines, fmt.Sprintf("~ %s  summary %q, want %q", alertName(w.Rule, w.Key), a.x.Summary, w.Summary))
		}
		for _, l := range slices.Sorted(maps.Keys(w.Labels)) {
			if a.x.Labels[l] != w.Labels[l] {
				lines = append(lines, fmt.Sprintf("~ %s  label %s=%q, want %q", alertName(w.Rule, w.Key), l, a.x.Labels[l], w.Labels[l]))
			}
		}
	}
	var extra []string
	for k, a := range have {
		if !seen[k] {
			extra = append(extra, fmt.Sprintf("+ %s  (%s, not expected)", alertName(a.rule, a.key), name))
		}
	}
	sort.Strings(extra)
	lines = append(lines, extra...)
	if len(lines) == 0 {
		return nil
	}
	return []string{fmt.Sprintf("%s, %s:\n  %s", where, name, strings.Join(lines, "\n  "))}
}

func stateOfIn(rule, key string, got []testAlertState) string {
	for _, a := range got {
		if a.rule == rule && a.key == key {
			return a.state.String()
		}
	}
	return "inactive"
}

func diffActions(where string, want []TestAction, events []event.Event) []string {
	var got []schemas.ActionRequest
	for _, e := range events {
		if e.Type() != schemas.TypeActionRequested {
			continue
		}
		var a schemas.ActionRequest
		if err := json.Unmarshal(e.Data(), &a); err == nil {
			got = append(got, a)
		}
	}
	used := make([]bool, len(got))
	var lines []string
	for _, w := range want {
		found := false
		for i, a := range got {
			if used[i] || a.Action != w.Action {
				continue
			}
			if w.Key != "" && (a.Violation == nil || a.Violation.Key != w.Key) {
				continue
			}
			if w.Params != nil && !reflect.DeepEqual(mustJSONAny(w.Params), mustJSONAny(a.Params)) {
				continue
			}
			used[i], found = true, true
			break
		}
		if !found {
			desc := w.Action
			if w.Key != "" {
				desc += " for " + w.Key
			}
			if w.Params != nil {
				p, _ := json.Marshal(w.Params)
				desc += " " + string(p)
			}
			lines = append(lines, fmt.Sprintf("- %s  (expected, not requested)", desc))
		}
	}
	for i, a := range got {
		if !used[i] {
			p, _ := json.Marshal(a.Params)
			lines = append(lines, fmt.Sprintf("+ %s %s  (requested, not expected)", a.Action, p))
		}
	}
	if len(lines) == 0 {
		return nil
	}
	return []string{fmt.Sprintf("%s, actions:\n  %s", where, strings.Join(lines, "\n  "))}
}
