package evaluators

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/operator-dev/operator/schemas"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// t0 is the start of every test timeline.
var t0 = time.Date(2025, 1, 2, 3, 4, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

// observationEvent builds an observation of subject/instance taken at t.
func observationEvent(t testing.TB, subject, instance, id string, ts time.Time, state any, obsErrs ...schemas.ObserverError) event.Event {
	t.Helper()
	raw, err := json.Marshal(state)
	if err != nil {
		t.Fatal(err)
	}
	if obsErrs == nil {
		obsErrs = []schemas.ObserverError{}
	}
	data := schemas.Observation{
		Subject:    subject,
		Instance:   instance,
		ObservedAt: ts,
		Observer:   schemas.ObserverInfo{DurationMS: 1, IntervalMS: 1000, Errors: obsErrs},
		State:      raw,
	}
	ev, err := schemas.NewEvent(schemas.EventSpec{
		Type: schemas.TypeObservation, Source: "/observers/" + subject + "/" + instance,
		Subject: subject + "/" + instance, ID: id, Time: ts,
	}, data)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// published is one event a recorder saw.
type published struct {
	subject string
	ev      event.Event
}

// recorder is a Publisher that behaves like a JetStream stream with an
// unbounded duplicate window: an id seen before is dropped. It fails the
// test when a repeated id carries different content, and can be told to
// fail publishing.
type recorder struct {
	t      testing.TB
	mu     sync.Mutex
	events []published
	byID   map[string][]byte
	dups   int
	fail   error
}

func newRecorder(t testing.TB) *recorder { return &recorder{t: t, byID: map[string][]byte{}} }

func (r *recorder) Publish(_ context.Context, subject string, e event.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	if err := e.Validate(); err != nil {
		r.t.Errorf("publish of an invalid event: %v", err)
	}
	b, err := json.Marshal(e)
	if err != nil {
		r.t.Errorf("encode: %v", err)
	}
	if old, ok := r.byID[e.ID()]; ok {
		if !bytes.Equal(old, b) {
			r.t.Errorf("event id %s published twice with different content:\n%s\n%s", e.ID(), old, b)
		}
		r.dups++
		return nil
	}
	r.byID[e.ID()] = b
	r.events = append(r.events, published{subject: subject, ev: e})
	return nil
}

func (r *recorder) setFail(err error) {
	r.mu.Lock()
	r.fail = err
	r.mu.Unlock()
}

func (r *recorder) all() []published {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]published(nil), r.events...)
}

// lines renders the recorded events one per line, for comparisons.
func (r *recorder) lines() []string {
	var out []string
	for _, p := range r.all() {
		out = append(out, describe(p.ev))
	}
	return out
}

// describe renders an event as "violation firing rule/key@time" or
// "action drain_node {params}@time".
func describe(e event.Event) string {
	switch e.Type() {
	case schemas.TypeViolation:
		var v schemas.Violation
		_ = json.Unmarshal(e.Data(), &v)
		return fmt.Sprintf("%s %s/%s %s", v.Status, v.Rule, v.Key, e.Time().Sub(t0))
	case schemas.TypeActionRequested:
		var a schemas.ActionRequest
		_ = json.Unmarshal(e.Data(), &a)
		p, _ := json.Marshal(a.Params)
		return fmt.Sprintf("action %s %s %s", a.Action, p, e.Time().Sub(t0))
	}
	return e.Type()
}

func loadTestRules(t testing.TB, files ...string) []*RuleSet {
	t.Helper()
	for i, f := range files {
		files[i] = filepath.Join("testdata", f)
	}
	sets, err := LoadRuleSets(LoadOptions{}, files...)
	if err != nil {
		t.Fatalf("load rules: %v", err)
	}
	return sets
}

func parseRules(t testing.TB, src string) []*RuleSet {
	t.Helper()
	rs, err := ParseRuleSet("inline.yaml", []byte(src), LoadOptions{})
	if err != nil {
		t.Fatalf("parse rules: %v", err)
	}
	return []*RuleSet{rs}
}

func newTestEngine(t testing.TB, sets []*RuleSet, store schemas.Store, pub schemas.Publisher) *Engine {
	t.Helper()
	e, err := NewEngine(Config{}, sets, store, pub)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func ctxT(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// alertOf reads the alert record of a fingerprint.
func alertOf(t testing.TB, s schemas.Store, fp string) (Alert, alertExtra, bool) {
	t.Helper()
	raw, _, err := s.Get(context.Background(), fp)
	if err != nil {
		return Alert{}, alertExtra{}, false
	}
	a, x, err := decodeAlert(raw)
	if err != nil {
		t.Fatal(err)
	}
	return a, x, true
}

func equalLines(t testing.TB, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
}

// golden compares got with testdata/<name>, rewriting it under -update.
func golden(t testing.TB, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run with -update if intended):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}
