package evaluators

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/operator-dev/operator/schemas"
)

// demoRules is the rule set most engine tests use. Its subject has no
// state schema, so paths are not checked against one.
const demoRules = `
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
  - name: redis_down
    expr: '!obs.state.redis.connected'
    on_missing: resolve
    summary: redis is down
`

// demoState builds a state: redis connected or not, and nodes given as
// "id=state".
func demoState(redis bool, nodes ...string) map[string]any {
	ns := []any{}
	for _, n := range nodes {
		id, st, _ := strings.Cut(n, "=")
		ns = append(ns, map[string]any{"id": id, "state": st})
	}
	return map[string]any{"redis": map[string]any{"connected": redis}, "nodes": ns}
}

// feed runs observations at 0s, 1s, ... through e.
func feed(t *testing.T, e *Engine, states ...map[string]any) {
	t.Helper()
	for i, s := range states {
		ts := at(time.Duration(i) * time.Second)
		if err := e.Observe(ctxT(t), observationEvent(t, "demo", "i1", fmt.Sprint("obs-", i), ts, s), ts); err != nil {
			t.Fatalf("observation %d: %v", i, err)
		}
	}
}

func TestEngineForAndRemediation(t *testing.T) {
	store, rec := &MemoryStore{}, newRecorder(t)
	e := newTestEngine(t, parseRules(t, demoRules), store, rec)
	up, down := demoState(true, "n1=up", "n2=up"), demoState(true, "n1=up", "n2=down")
	feed(t, e, up, down, down, down, up, up)
	equalLines(t, rec.lines(), []string{
		"firing node_down/n2 3s",
		`action drain_node {"node_id":"n2"} 3s`,
		"resolved node_down/n2 4s",
	})
}

func TestEngineEventContents(t *testing.T) {
	store, rec := &MemoryStore{}, newRecorder(t)
	e := newTestEngine(t, parseRules(t, demoRules), store, rec)
	feed(t, e, demoState(true, "n1=down"), demoState(true, "n1=down"), demoState(true, "n1=down"), demoState(true, "n1=up"))
	evs := rec.all()
	if len(evs) != 3 {
		t.Fatalf("events: %v", rec.lines())
	}
	val, err := schemas.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	fp := Fingerprint("demo", "i1", "node_down", "n1")
	episode := EpisodeID(fp, at(0))

	fire, act, res := evs[0], evs[1], evs[2]
	for _, p := range evs {
		if err := val.Validate(p.ev.Type(), p.ev.Data()); err != nil {
			t.Errorf("%s does not match its schema: %v", p.ev.Type(), err)
		}
		if got := schemas.Extension(p.ev, schemas.ExtCorrelationID); got != episode {
			t.Errorf("%s correlationid %q, want the episode %q", p.ev.Type(), got, episode)
		}
		if p.ev.Source() != "/evaluators/"+DefaultWorkerID {
			t.Errorf("source %q", p.ev.Source())
		}
	}
	if fire.subject != "operator.violation.demo.i1.node_down" || fire.ev.Subject() != fp {
		t.Errorf("firing on %q with subject %q", fire.subject, fire.ev.Subject())
	}
	if fire.ev.ID() != schemas.DeriveID(fp, episode, "firing") || res.ev.ID() != schemas.DeriveID(fp, episode, "resolved") {
		t.Errorf("violation ids %s %s are not DeriveID(fingerprint, episode, status)", fire.ev.ID(), res.ev.ID())
	}
	if got := schemas.Extension(fire.ev, schemas.ExtCausationID); got != "obs-2" {
		t.Errorf("firing causationid %q, want the observation obs-2", got)
	}
	if got := schemas.Extension(res.ev, schemas.ExtCausationID); got != "obs-3" {
		t.Errorf("resolved causationid %q, want obs-3", got)
	}
	var v schemas.Violation
	if err := json.Unmarshal(fire.ev.Data(), &v); err != nil {
		t.Fatal(err)
	}
	if v.Episode != episode || !v.ActiveAt.Equal(at(0)) || v.FiredAt == nil || !v.FiredAt.Equal(at(2*time.Second)) ||
		v.Severity != "critical" || v.Summary != "node n1 is down" || string(v.Evidence) != `{"id":"n1","state":"down"}` {
		t.Errorf("firing violation %+v evidence %s", v, v.Evidence)
	}
	var rv schemas.Violation
	_ = json.Unmarshal(res.ev.Data(), &rv)
	if rv.ResolvedAt == nil || !rv.ResolvedAt.Equal(at(3*time.Second)) || rv.Summary != v.Summary || rv.Episode != episode {
		t.Errorf("resolved violation %+v", rv)
	}

	if act.subject != "operator.action.requested.demo.i1" {
		t.Errorf("action request on %q", act.subject)
	}
	if act.ev.ID() != schemas.DeriveID(episode, "drain_node") {
		t.Errorf("action id %s is not DeriveID(episode, action)", act.ev.ID())
	}
	if got := schemas.Extension(act.ev, schemas.ExtCausationID); got != fire.ev.ID() {
		t.Errorf("action causationid %q, want the violation %q", got, fire.ev.ID())
	}
	var ar schemas.ActionRequest
	_ = json.Unmarshal(act.ev.Data(), &ar)
	want := schemas.ViolationRef{Fingerprint: fp, Episode: episode, Rule: "node_down", Key: "n1"}
	if ar.ID != act.ev.ID() || ar.Violation == nil || *ar.Violation != want || ar.Params["node_id"] != "n1" || !ar.RequestedAt.Equal(at(2*time.Second)) {
		t.Errorf("action request %+v", ar)
	}

	// The record actuators read keeps the meaning of State and Episode.
	raw, _, err := store.Get(ctxT(t), fp)
	if err != nil {
		t.Fatal(err)
	}
	var rec2 schemas.AlertRecord
	_ = json.Unmarshal(raw, &rec2)
	if rec2.State != schemas.AlertResolved || rec2.Episode != episode || rec2.Fingerprint != fp {
		t.Errorf("alert record %s", raw)
	}
}

func TestEngineRedelivery(t *testing.T) {
	store, rec := &MemoryStore{}, newRecorder(t)
	e := newTestEngine(t, parseRules(t, demoRules), store, rec)
	down := demoState(false, "n1=down")
	ev := observationEvent(t, "demo", "i1", "o1", at(0), down)
	for i := range 3 {
		if err := e.Observe(ctxT(t), ev, at(0)); err != nil {
			t.Fatalf("delivery %d: %v", i, err)
		}
	}
	equalLines(t, rec.lines(), []string{"firing redis_down/ 0s"})
	if rec.dups != 0 {
		t.Errorf("%d duplicate publishes for a redelivered observation", rec.dups)
	}
	a, _, _ := alertOf(t, store, Fingerprint("demo", "i1", "node_down", "n1"))
	if a.State != Pending || !a.ActiveAt.Equal(at(0)) {
		t.Errorf("pending alert after redelivery: %+v", a)
	}
}

func TestEngineOutOfOrder(t *testing.T) {
	store, rec := &MemoryStore{}, newRecorder(t)
	reg := prometheus.NewRegistry()
	e, err := NewEngine(Config{Registerer: reg}, parseRules(t, demoRules), store, rec)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	newer := observationEvent(t, "demo", "i1", "new", at(5*time.Second), demoState(false))
	older := observationEvent(t, "demo", "i1", "old", at(4*time.Second), demoState(true))
	sameTime := observationEvent(t, "demo", "i1", "other", at(5*time.Second), demoState(true))
	if err := e.Observe(ctx, newer, at(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := e.Observe(ctx, older, at(6*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := e.Observe(ctx, sameTime, at(6*time.Second)); err != nil {
		t.Fatal(err)
	}
	equalLines(t, rec.lines(), []string{"firing redis_down/ 5s"})
	if got := testutil.ToFloat64(e.m.observations.WithLabelValues("demo", resultOutOfOrder)); got != 2 {
		t.Errorf("out_of_order count %v, want 2", got)
	}
	a, _, _ := alertOf(t, store, Fingerprint("demo", "i1", "redis_down", ""))
	if a.State != Firing || a.LastEventID != "new" {
		t.Errorf("an older observation changed the alert: %+v", a)
	}
}

// TestEngineRestartMidGrace kills a worker in the middle of a `for` grace
// period: a new worker on the same store fires on time, in the same
// episode.
func TestEngineRestartMidGrace(t *testing.T) {
	states := []map[string]any{demoState(true, "n1=down"), demoState(true, "n1=down"), demoState(true, "n1=down"), demoState(true, "n1=down")}

	ref := newRecorder(t)
	feed(t, newTestEngine(t, parseRules(t, demoRules), &MemoryStore{}, ref), states...)

	store, rec := &MemoryStore{}, newRecorder(t)
	first := newTestEngine(t, parseRules(t, demoRules), store, rec)
	feed(t, first, states[:2]...) // pending since 0s, then the worker dies
	second := newTestEngine(t, parseRules(t, demoRules), store, rec)
	for i := 2; i < len(states); i++ {
		ts := at(time.Duration(i) * time.Second)
		if err := second.Observe(ctxT(t), observationEvent(t, "demo", "i1", fmt.Sprint("obs-", i), ts, states[i]), ts); err != nil {
			t.Fatal(err)
		}
	}
	equalLines(t, rec.lines(), ref.lines())
	equalLines(t, rec.lines(), []string{"firing node_down/n1 2s", `action drain_node {"node_id":"n1"} 2s`})
}

// TestEngineCrashBetweenWriteAndPublish makes publishing fail right after
// a transition was stored, as if the worker died there.
func TestEngineCrashBetweenWriteAndPublish(t *testing.T) {
	store, rec := &MemoryStore{}, newRecorder(t)
	e := newTestEngine(t, parseRules(t, demoRules), store, rec)
	ctx := ctxT(t)
	down := observationEvent(t, "demo", "i1", "o1", at(0), demoState(false))
	rec.setFail(errors.New("nats: no responders"))
	if err := e.Observe(ctx, down, at(0)); err == nil {
		t.Fatal("Observe succeeded although publishing failed")
	}
	fp := Fingerprint("demo", "i1", "redis_down", "")
	a, x, _ := alertOf(t, store, fp)
	if a.State != Firing || len(x.Outbox) != 1 {
		t.Fatalf("after the failed publish the transition must be stored with its event: %+v outbox %d", a, len(x.Outbox))
	}
	// A different worker takes the redelivery.
	rec.setFail(nil)
	other := newTestEngine(t, parseRules(t, demoRules), store, rec)
	if err := other.Observe(ctx, down, at(0)); err != nil {
		t.Fatal(err)
	}
	equalLines(t, rec.lines(), []string{"firing redis_down/ 0s"})
	if _, x, _ := alertOf(t, store, fp); len(x.Outbox) != 0 {
		t.Fatalf("outbox not cleared after publishing: %d", len(x.Outbox))
	}

	// No redelivery at all (the message was lost): the next observation
	// publishes what is pending before moving on.
	rec.setFail(errors.New("nats: timeout"))
	if err := e.Observe(ctx, observationEvent(t, "demo", "i1", "o2", at(time.Second), demoState(true)), at(time.Second)); err == nil {
		t.Fatal("Observe succeeded although publishing failed")
	}
	rec.setFail(nil)
	if err := e.Observe(ctx, observationEvent(t, "demo", "i1", "o3", at(2*time.Second), demoState(true)), at(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	equalLines(t, rec.lines(), []string{"firing redis_down/ 0s", "resolved redis_down/ 1s"})
}

// yieldingStore interleaves concurrent workers between every store call.
type yieldingStore struct{ *MemoryStore }

func (y yieldingStore) Get(ctx context.Context, k string) ([]byte, uint64, error) {
	runtime.Gosched()
	return y.MemoryStore.Get(ctx, k)
}

func (y yieldingStore) CompareAndSwap(ctx context.Context, k string, v []byte, r uint64) (uint64, error) {
	runtime.Gosched()
	return y.MemoryStore.CompareAndSwap(ctx, k, v, r)
}

// TestEngineWorkersRace runs several workers on one store, each handling
// every observation (as after redeliveries to competing consumers), in
// parallel. The events must be exactly those of a single worker: one
// firing and one resolved event per episode, never two episodes for one.
func TestEngineWorkersRace(t *testing.T) {
	var states []map[string]any
	for i := range 12 {
		switch {
		case i < 2:
			states = append(states, demoState(true, "n1=up", "n2=up", "n3=up"))
		case i < 6:
			states = append(states, demoState(i%2 == 0, "n1=down", "n2=down", "n3=up"))
		case i < 9:
			states = append(states, demoState(true, "n1=up", "n3=down")) // n2 vanished
		default:
			states = append(states, demoState(true, "n1=up", "n2=up", "n3=up"))
		}
	}
	ref := newRecorder(t)
	feed(t, newTestEngine(t, parseRules(t, demoRules), &MemoryStore{}, ref), states...)
	want := sortedCopy(ref.lines())

	for round := range 20 {
		store, rec := yieldingStore{&MemoryStore{}}, newRecorder(t)
		workers := make([]*Engine, 3)
		for i := range workers {
			e, err := NewEngine(Config{WorkerID: fmt.Sprint("w", i)}, parseRules(t, demoRules), store, rec)
			if err != nil {
				t.Fatal(err)
			}
			workers[i] = e
		}
		var wg sync.WaitGroup
		for _, w := range workers {
			wg.Go(func() {
				for i, s := range states {
					ts := at(time.Duration(i) * time.Second)
					if err := w.Observe(ctxT(t), observationEvent(t, "demo", "i1", fmt.Sprint("obs-", i), ts, s), ts); err != nil {
						t.Errorf("observation %d: %v", i, err)
					}
				}
			})
		}
		wg.Wait()
		got := sortedCopy(rec.lines())
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("round %d: racing workers published\n%s\nwant\n%s", round, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		firing := map[string]int{}
		for _, p := range rec.all() {
			if p.ev.Type() == schemas.TypeViolation && strings.Contains(string(p.ev.Data()), `"status":"firing"`) {
				firing[schemas.Extension(p.ev, schemas.ExtCorrelationID)]++
			}
		}
		for ep, n := range firing {
			if n != 1 {
				t.Fatalf("round %d: episode %s fired %d times", round, ep, n)
			}
		}
	}
}

// TestEngineVanishedItem: an item that disappears from a rule that
// evaluated cleanly resolves through the normal false path (after for),
// while one that disappears because the rule failed keeps its state.
func TestEngineVanishedItem(t *testing.T) {
	store, rec := &MemoryStore{}, newRecorder(t)
	e := newTestEngine(t, parseRules(t, demoRules), store, rec)
	d := demoState(true, "n1=down", "n2=down")
	broken := map[string]any{"redis": map[string]any{"connected": true}} // no nodes: each fails
	feed(t, e, d, d, d, broken, broken, demoState(true, "n1=down"))
	equalLines(t, rec.lines(), []string{
		"firing node_down/n1 2s",
		`action drain_node {"node_id":"n1"} 2s`,
		"firing node_down/n2 2s",
		`action drain_node {"node_id":"n2"} 2s`,
		"firing rule_error/node_down 3s",
		"resolved node_down/n2 5s",
		"resolved rule_error/node_down 5s",
	})
	inst := instanceOf(t, store, "demo", "i1")
	if _, ok := inst.tracked("node_down", "n2"); ok {
		t.Errorf("resolved key n2 still tracked: %+v", inst.Active)
	}
	if _, ok := inst.tracked("node_down", "n1"); !ok {
		t.Errorf("firing key n1 not tracked: %+v", inst.Active)
	}
}

func instanceOf(t *testing.T, s schemas.Store, subject, instance string) instanceRecord {
	t.Helper()
	raw, _, err := s.Get(ctxT(t), instanceKey(subject, instance))
	if err != nil {
		t.Fatal(err)
	}
	var r instanceRecord
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestEngineRuleError: a runtime error fires rule_error once per episode,
// is counted, and leaves the rule's firing alert firing.
func TestEngineRuleError(t *testing.T) {
	store, rec := &MemoryStore{}, newRecorder(t)
	reg := prometheus.NewRegistry()
	e, err := NewEngine(Config{Registerer: reg}, parseRules(t, demoRules), store, rec)
	if err != nil {
		t.Fatal(err)
	}
	noRedis := map[string]any{"nodes": []any{}} // observer could not read redis
	feed(t, e, demoState(false), noRedis, noRedis, noRedis, demoState(false), demoState(true))
	equalLines(t, rec.lines(), []string{
		"firing redis_down/ 0s",
		"firing rule_error/redis_down 1s",
		"resolved rule_error/redis_down 4s",
		"resolved redis_down/ 5s",
	})
	if got := testutil.ToFloat64(e.m.ruleErrors.WithLabelValues("demo", "redis_down")); got != 3 {
		t.Errorf("operator_evaluator_rule_errors_total = %v, want 3", got)
	}
	var v schemas.Violation
	for _, p := range rec.all() {
		if p.ev.Subject() == Fingerprint("demo", "i1", RuleError, "redis_down") {
			_ = json.Unmarshal(p.ev.Data(), &v)
			break
		}
	}
	if !strings.Contains(v.Error, "no such key: redis") || v.Labels["rule"] != "redis_down" || v.Rule != RuleError {
		t.Errorf("rule_error violation %+v", v)
	}
	// The metric is registered under its documented name.
	n, err := testutil.GatherAndCount(reg, "operator_evaluator_rule_errors_total")
	if err != nil || n != 1 {
		t.Errorf("gathered %d series, %v", n, err)
	}
}

// TestEngineStale checks observer_stale both ways and on_missing, by the
// ticker (CheckStale) and by the gap between observations, which must
// produce the same events.
func TestEngineStale(t *testing.T) {
	run := func(t *testing.T, tick bool) []string {
		store, rec := &MemoryStore{}, newRecorder(t)
		e := newTestEngine(t, parseRules(t, demoRules), store, rec)
		ctx := ctxT(t)
		obs := func(i int, s map[string]any) {
			ts := at(time.Duration(i) * time.Second)
			if err := e.Observe(ctx, observationEvent(t, "demo", "i1", fmt.Sprint("obs-", i), ts, s), ts); err != nil {
				t.Fatal(err)
			}
		}
		// interval 1s → stale after 3s without observations.
		obs(0, demoState(false, "n1=down"))
		obs(1, demoState(false, "n1=down"))
		obs(2, demoState(false, "n1=down")) // node_down fires at 2s
		if tick {
			for s := 3; s <= 9; s++ {
				if err := e.CheckStale(ctx, at(time.Duration(s)*time.Second)); err != nil {
					t.Fatal(err)
				}
			}
		}
		obs(10, demoState(false, "n1=down"))
		return rec.lines()
	}
	want := []string{
		"firing redis_down/ 0s",
		"firing node_down/n1 2s",
		`action drain_node {"node_id":"n1"} 2s`,
		"firing observer_stale/ 5s", // last observation 2s + 3s
		"resolved redis_down/ 5s",   // on_missing: resolve
		"resolved observer_stale/ 10s",
		"firing redis_down/ 10s", // a new episode
	}
	t.Run("ticker", func(t *testing.T) { equalLines(t, run(t, true), want) })
	t.Run("gap", func(t *testing.T) { equalLines(t, run(t, false), want) })

	t.Run("not stale within stale_after", func(t *testing.T) {
		store, rec := &MemoryStore{}, newRecorder(t)
		e := newTestEngine(t, parseRules(t, demoRules), store, rec)
		ts := at(0)
		if err := e.Observe(ctxT(t), observationEvent(t, "demo", "i1", "o", ts, demoState(true)), ts); err != nil {
			t.Fatal(err)
		}
		if err := e.CheckStale(ctxT(t), at(3*time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := e.checkStale(ctxT(t), at(5*time.Second), at(4*time.Second)); err != nil {
			t.Fatal(err)
		}
		equalLines(t, rec.lines(), nil)
		if err := e.CheckStale(ctxT(t), at(3*time.Second+time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		equalLines(t, rec.lines(), []string{"firing observer_stale/ 3s"})
	})
}

func TestEngineStaleAfterPrecedence(t *testing.T) {
	sr := &subjectRules{}
	e := &Engine{cfg: Config{}}
	if got := e.staleAfter(sr, 0); got != DefaultStaleAfter {
		t.Errorf("fallback %v", got)
	}
	if got := e.staleAfter(sr, 2000); got != 6*time.Second {
		t.Errorf("from interval %v", got)
	}
	e.cfg.StaleAfter = time.Minute
	if got := e.staleAfter(sr, 2000); got != time.Minute {
		t.Errorf("from config %v", got)
	}
	sr.staleAfter = time.Hour
	if got := e.staleAfter(sr, 2000); got != time.Hour {
		t.Errorf("from the rule file %v", got)
	}
}

func TestEngineRejects(t *testing.T) {
	e := newTestEngine(t, parseRules(t, demoRules), &MemoryStore{}, newRecorder(t))
	ctx := ctxT(t)
	other := observationEvent(t, "other", "i1", "x", at(0), map[string]any{})
	if err := e.Observe(ctx, other, at(0)); !errors.Is(err, ErrNoRules) {
		t.Errorf("observation of another subject: %v", err)
	}
	bad := observationEvent(t, "demo", "i1", "x", at(0), map[string]any{})
	bad.SetType(schemas.TypeViolation)
	if err := e.Observe(ctx, bad, at(0)); !errors.Is(err, ErrInvalidObservation) {
		t.Errorf("wrong type: %v", err)
	}
	garbled := observationEvent(t, "demo", "i1", "x", at(0), map[string]any{})
	_ = garbled.SetData(schemas.ContentTypeJSON, []byte(`{"subject": "de.mo"}`))
	if err := e.Observe(ctx, garbled, at(0)); !errors.Is(err, ErrInvalidObservation) {
		t.Errorf("unsafe subject: %v", err)
	}
	if _, err := NewEngine(Config{WorkerID: "a b"}, nil, &MemoryStore{}, newRecorder(t)); err == nil {
		t.Error("NewEngine accepted an invalid config")
	}
	if _, err := NewEngine(Config{}, []*RuleSet{{Subject: "x", Rules: []*Rule{{Name: "r"}}}}, &MemoryStore{}, newRecorder(t)); err == nil {
		t.Error("NewEngine accepted an uncompiled rule")
	}
}

func TestMemoryStoreEnforcesRevisions(t *testing.T) {
	var s MemoryStore
	ctx := ctxT(t)
	r1, err := s.CompareAndSwap(ctx, "k", []byte("a"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CompareAndSwap(ctx, "k", []byte("b"), 0); !errors.Is(err, schemas.ErrRevisionConflict) {
		t.Fatalf("create over an existing key: %v", err)
	}
	r2, err := s.CompareAndSwap(ctx, "k", []byte("b"), r1)
	if err != nil || r2 <= r1 {
		t.Fatalf("update: %d %v", r2, err)
	}
	if _, err := s.CompareAndSwap(ctx, "k", []byte("c"), r1); !errors.Is(err, schemas.ErrRevisionConflict) {
		t.Fatalf("stale revision: %v", err)
	}
	if _, _, err := s.Get(ctx, "nope"); !errors.Is(err, schemas.ErrKeyNotFound) {
		t.Fatalf("missing key: %v", err)
	}
}
