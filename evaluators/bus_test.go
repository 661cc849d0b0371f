package evaluators_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/operator-dev/operator/evaluators"
	"github.com/operator-dev/operator/internal/bus"
	"github.com/operator-dev/operator/internal/bus/bustest"
	"github.com/operator-dev/operator/schemas"
)

// These tests run the engine against a real embedded nats-server: the
// evaluator state bucket with its compare-and-swap, and JetStream's
// deduplication of republished ids.

const busRules = `
subject: demo
rules:
  - name: node_down
    each: obs.state.nodes
    key: item.id
    expr: item.state == "down"
    for: 2s
    severity: critical
    summary: 'node {{ item.id }} is down'
    remediate:
      action: drain_node
      params: {node_id: item.id}
`

var t0 = time.Date(2025, 1, 2, 3, 4, 0, 0, time.UTC)

func rules(t *testing.T) []*evaluators.RuleSet {
	t.Helper()
	rs, err := evaluators.ParseRuleSet("bus.yaml", []byte(busRules), evaluators.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return []*evaluators.RuleSet{rs}
}

func observation(t *testing.T, i int, nodes ...string) event.Event {
	t.Helper()
	ns := []map[string]string{}
	for _, n := range nodes {
		id, st, _ := strings.Cut(n, "=")
		ns = append(ns, map[string]string{"id": id, "state": st})
	}
	state, _ := json.Marshal(map[string]any{"nodes": ns})
	ts := t0.Add(time.Duration(i) * time.Second)
	e, err := schemas.NewEvent(schemas.EventSpec{
		Type: schemas.TypeObservation, Source: "/observers/demo/i1", Subject: "demo/i1",
		ID: fmt.Sprint("obs-", i), Time: ts,
	}, schemas.Observation{
		Subject: "demo", Instance: "i1", ObservedAt: ts,
		Observer: schemas.ObserverInfo{IntervalMS: 1000, Errors: []schemas.ObserverError{}},
		State:    state,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func stateStore(t *testing.T, b *bus.Bus) schemas.Store {
	t.Helper()
	kv, err := b.KV(bustest.Context(t, 10*time.Second), schemas.BucketEvaluatorState)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// stored returns the events stored in a stream, described one per line.
func stored(t *testing.T, b *bus.Bus, stream string) []event.Event {
	t.Helper()
	var buf bytes.Buffer
	w := bus.NewRecordWriter(&buf)
	if _, err := b.Record(bustest.Context(t, 10*time.Second), stream, time.Time{}, w); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	var out []event.Event
	rr := bus.NewRecordReader(&buf)
	for {
		r, err := rr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		e, err := r.Event()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
}

func firingPerEpisode(t *testing.T, evs []event.Event) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, e := range evs {
		var v schemas.Violation
		if err := json.Unmarshal(e.Data(), &v); err != nil {
			t.Fatal(err)
		}
		if v.Status == schemas.StatusFiring {
			n[v.Episode]++
		}
	}
	return n
}

// TestBusWorkersRace runs two workers, each on its own connection (as two
// processes would), that both handle every observation at the same time.
// The stream must hold exactly one firing and one resolved violation per
// episode and one action request.
func TestBusWorkersRace(t *testing.T) {
	b := bustest.New(t, bustest.WithListener)
	other, err := bus.Open(bustest.Context(t, 10*time.Second), bus.Config{URL: b.ClientURL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Close() })

	var obs []event.Event
	for i := range 8 {
		switch {
		case i < 5:
			obs = append(obs, observation(t, i, "n1=down", "n2=up"))
		default:
			obs = append(obs, observation(t, i, "n1=up", "n2=up"))
		}
	}
	var wg sync.WaitGroup
	for w, bb := range []*bus.Bus{b, other} {
		e, err := evaluators.NewEngine(evaluators.Config{WorkerID: fmt.Sprint("w", w)}, rules(t), stateStore(t, bb), bb)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for _, o := range obs {
				if err := e.Observe(bustest.Context(t, 10*time.Second), o, o.Time()); err != nil {
					t.Errorf("worker %d, %s: %v", w, o.ID(), err)
				}
			}
		})
	}
	wg.Wait()

	vs := stored(t, b, schemas.StreamViolations)
	if len(vs) != 2 {
		t.Fatalf("violations stored: %d, want firing + resolved", len(vs))
	}
	for ep, n := range firingPerEpisode(t, vs) {
		if n != 1 {
			t.Errorf("episode %s fired %d times", ep, n)
		}
	}
	if acts := stored(t, b, schemas.StreamActions); len(acts) != 1 {
		t.Errorf("action requests stored: %d, want 1", len(acts))
	}
}

// TestBusConsumeRestartMidGrace runs `operator evaluate`'s loop on a
// durable consumer, stops it in the middle of a `for` grace period, and
// starts a new worker: the grace timer survives in the bucket, the alert
// fires once, at the right event time.
func TestBusConsumeRestartMidGrace(t *testing.T) {
	b := bustest.New(t)
	ctx := bustest.Context(t, 60*time.Second)
	subj, _ := b.Subjects().Observation("demo", "i1")
	filter, _ := b.Subjects().Observations("demo")
	cc := bus.ConsumerConfig{Stream: schemas.StreamObservations, Durable: "evaluator-demo", FilterSubjects: []string{filter}, AckWait: 5 * time.Second}
	source := evaluators.SourceFunc(func(ctx context.Context, handle func(context.Context, event.Event) error) error {
		return b.Consume(ctx, cc, func(ctx context.Context, m *bus.Message) error {
			err := handle(ctx, m.Event)
			if errors.Is(err, evaluators.ErrInvalidObservation) || errors.Is(err, evaluators.ErrNoRules) {
				return schemas.Permanent(err)
			}
			return err
		})
	})
	start := func() (stop func()) {
		e, err := evaluators.NewEngine(evaluators.Config{}, rules(t), stateStore(t, b), b)
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- e.Run(rctx, source) }()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}
	kv, err := b.KV(ctx, schemas.BucketEvaluatorState)
	if err != nil {
		t.Fatal(err)
	}
	pendingSince := func() string {
		raw, _, err := kv.Get(ctx, evaluators.Fingerprint("demo", "i1", "node_down", "n1"))
		if err != nil {
			return ""
		}
		var r schemas.AlertRecord
		_ = json.Unmarshal(raw, &r)
		return r.State + "@" + r.LastEventID
	}

	stop := start()
	for i := range 2 {
		if err := b.Publish(ctx, subj, observation(t, i, "n1=down")); err != nil {
			t.Fatal(err)
		}
	}
	bustest.Eventually(t, 20*time.Second, func() bool { return pendingSince() == "pending@obs-1" }, "alert pending after obs-1")
	stop() // the worker dies mid-grace

	stop = start()
	defer stop()
	for i := 2; i < 4; i++ {
		if err := b.Publish(ctx, subj, observation(t, i, "n1=down")); err != nil {
			t.Fatal(err)
		}
	}
	bustest.Eventually(t, 20*time.Second, func() bool { return pendingSince() == "firing@obs-3" }, "alert firing after obs-3")
	vs := stored(t, b, schemas.StreamViolations)
	if len(vs) != 1 {
		t.Fatalf("violations: %d, want one firing", len(vs))
	}
	var v schemas.Violation
	_ = json.Unmarshal(vs[0].Data(), &v)
	if v.Status != schemas.StatusFiring || !v.ActiveAt.Equal(t0) || v.FiredAt == nil || !v.FiredAt.Equal(t0.Add(2*time.Second)) {
		t.Errorf("violation %+v: want active since the first worker's 0s, fired at 2s", v)
	}
	if got := schemas.Extension(vs[0], schemas.ExtCausationID); got != "obs-2" {
		t.Errorf("causationid %q, want obs-2", got)
	}
}

// TestBusKVErrorsAreTheEngines checks that the real bucket reports a missing
// key and a lost compare-and-swap with the errors the engine matches, with
// no adapter in between.
func TestBusKVErrorsAreTheEngines(t *testing.T) {
	b := bustest.New(t)
	s := stateStore(t, b)
	ctx := bustest.Context(t, 10*time.Second)
	if _, _, err := s.Get(ctx, "ratelimiter/demo/node_down/n1"); !errors.Is(err, schemas.ErrKeyNotFound) {
		t.Fatalf("missing key: %v, want schemas.ErrKeyNotFound", err)
	}
	if _, err := s.CompareAndSwap(ctx, "k", []byte("a"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CompareAndSwap(ctx, "k", []byte("b"), 0); !errors.Is(err, schemas.ErrRevisionConflict) {
		t.Fatalf("lost create: %v, want schemas.ErrRevisionConflict", err)
	}
	if _, ok := s.(evaluators.KeyLister); !ok {
		t.Fatal("the bucket does not list keys; staleness needs it")
	}
}
