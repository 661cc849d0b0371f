package actuators

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/operator-dev/operator/internal/bus"
	"github.com/operator-dev/operator/internal/bus/bustest"
	"github.com/operator-dev/operator/schemas"
)

// wait is how long a test waits for an event before failing.
const wait = 15 * time.Second

// harness is one embedded JetStream with Operator's streams and buckets, a
// record of every action event stored, and a fake executor.
type harness struct {
	t       *testing.T
	b       *bus.Bus
	alerts  ControlStore
	ledger  ControlStore
	control ControlStore
	cat     *Catalog
	exec    *fakeExecutor

	mu     sync.Mutex
	events []event.Event
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	b := bustest.New(t, bustest.WithListener)
	ctx := bustest.Context(t, time.Minute)
	h := &harness{t: t, b: b, cat: loadTestCatalog(t), exec: &fakeExecutor{}}
	h.alerts = openStore(t, b, schemas.BucketEvaluatorState)
	h.ledger = openStore(t, b, schemas.BucketActuatorLedger)
	h.control = openStore(t, b, schemas.BucketControl)
	_ = ctx
	// Record every action event from the start of the stream.
	tctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = b.Tail(tctx, "operator.action.>", time.Now().Add(-time.Hour), func(_ string, e event.Event, err error) {
			if err != nil {
				t.Errorf("undecodable action event: %v", err)
				return
			}
			h.mu.Lock()
			h.events = append(h.events, e)
			h.mu.Unlock()
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return h
}

// testConfig is a worker config with short timings for tests.
func testConfig(mode string) Config {
	return Config{
		WorkerID:        "w1",
		Mode:            mode,
		ExecuteTimeout:  2 * time.Second,
		RetryBackoff:    10 * time.Millisecond,
		MaxRetryBackoff: 50 * time.Millisecond,
		LeaseMargin:     time.Second,
		VerifyGrace:     200 * time.Millisecond,
		SweepInterval:   50 * time.Millisecond,
		AckWait:         2 * time.Second,
		Redelivery:      []time.Duration{50 * time.Millisecond},
	}
}

// openStore opens a bucket; its errors are already the schemas errors the
// worker matches.
func openStore(t testing.TB, b *bus.Bus, bucket string) ControlStore {
	t.Helper()
	kv, err := b.KV(bustest.Context(t, 10*time.Second), bucket)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// busAdapter adapts internal/bus to Bus, as the pipeline does.
type busAdapter struct{ *bus.Bus }

func (a busAdapter) Consume(ctx context.Context, spec ConsumerSpec, h Handler) error {
	cfg := bus.ConsumerConfig{Stream: spec.Stream, Durable: spec.Name, Description: spec.Description,
		FilterSubjects: []string{spec.Filter}, MaxDeliver: spec.MaxDeliver, AckWait: spec.AckWait,
		Backoff: spec.Backoff, Workers: spec.Workers, HandleTimeout: spec.HandleTimeout}
	return a.Bus.Consume(ctx, cfg, func(ctx context.Context, m *bus.Message) error {
		err := h(ctx, &Delivery{Event: m.Event, NumDelivered: m.NumDelivered, InProgress: m.InProgress})
		return err
	})
}

func (h *harness) deps(exec Executor) Deps {
	return Deps{Bus: busAdapter{h.b}, Alerts: h.alerts, Ledger: h.ledger, Control: h.control,
		Subjects: map[string]Subject{"fake": {Catalog: h.cat, Executor: exec}}}
}

// secondConnection returns deps on a new connection to the same server, as
// another replica in another process would have.
func (h *harness) secondConnection(exec Executor) Deps {
	h.t.Helper()
	ctx := bustest.Context(h.t, time.Minute)
	b, err := bus.Open(ctx, bus.Config{URL: h.b.ClientURL(), Name: "replica-2"})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = b.Close() })
	return Deps{Bus: busAdapter{b}, Alerts: openStore(h.t, b, schemas.BucketEvaluatorState),
		Ledger: openStore(h.t, b, schemas.BucketActuatorLedger), Control: openStore(h.t, b, schemas.BucketControl),
		Subjects: map[string]Subject{"fake": {Catalog: h.cat, Executor: exec}}}
}

// start runs a worker until the test ends (or stop is called) and returns
// it with a stop function that waits for Run to return.
func (h *harness) start(cfg Config, deps Deps) (*Worker, func()) {
	h.t.Helper()
	w, err := New(cfg, deps)
	if err != nil {
		h.t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-errc; err != nil {
				h.t.Errorf("Run: %v", err)
			}
		})
	}
	h.t.Cleanup(stop)
	return w, stop
}

var requestSeq atomic.Int64

// newRequest returns a request for the fake subject with a unique id.
func newRequest(action string, params map[string]any) schemas.ActionRequest {
	if params == nil {
		params = map[string]any{}
	}
	return schemas.ActionRequest{
		ID:      fmt.Sprintf("req-%d-%d", time.Now().UnixNano(), requestSeq.Add(1)),
		Subject: "fake", Instance: "i1", Action: action, Params: params,
		Reason: "test", RequestedBy: "test", RequestedAt: time.Now(),
	}
}

// publish publishes req as the evaluator or `operator act` would.
func (h *harness) publish(req schemas.ActionRequest) {
	h.t.Helper()
	corr := req.ID
	if req.Violation != nil {
		corr = req.Violation.Episode
	}
	e, err := schemas.NewEvent(schemas.EventSpec{Type: schemas.TypeActionRequested, Source: "/test",
		Subject: req.Subject + "/" + req.Instance, ID: req.ID, Time: req.RequestedAt, CorrelationID: corr}, req)
	if err != nil {
		h.t.Fatal(err)
	}
	subj, err := h.b.Subjects().ActionRequested(req.Subject, req.Instance)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.b.Publish(bustest.Context(h.t, 10*time.Second), subj, e); err != nil {
		h.t.Fatal(err)
	}
}

// observe publishes an observation of fake/i1 with the given state.
func (h *harness) observe(state string) {
	h.t.Helper()
	now := time.Now()
	obs := schemas.Observation{Subject: "fake", Instance: "i1", ObservedAt: now,
		Observer: schemas.ObserverInfo{DurationMS: 1}, State: json.RawMessage(state)}
	e, err := schemas.NewEvent(schemas.EventSpec{Type: schemas.TypeObservation, Source: "/observers/fake/i1",
		Subject: "fake/i1", ID: fmt.Sprintf("obs-%d", now.UnixNano()), Time: now}, obs)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.b.Publish(bustest.Context(h.t, 10*time.Second), "operator.obs.fake.i1", e); err != nil {
		h.t.Fatal(err)
	}
}

// event returns the stored event with the given id, if any.
func (h *harness) event(id string) (event.Event, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range h.events {
		if e.ID() == id {
			return e, true
		}
	}
	return event.Event{}, false
}

// count returns how many stored events have the given type and request id.
func (h *harness) count(typ, requestID string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, e := range h.events {
		if e.Type() != typ {
			continue
		}
		var d struct {
			RequestID string `json:"request_id"`
			ID        string `json:"id"`
		}
		_ = json.Unmarshal(e.Data(), &d)
		if d.RequestID == requestID || d.ID == requestID {
			n++
		}
	}
	return n
}

// result waits for the final result of a request.
func (h *harness) result(id string) schemas.ActionResult {
	h.t.Helper()
	return h.resultEvent(schemas.DeriveID(id, "completed"))
}

// awaiting waits for the notice that a request awaits approval.
func (h *harness) awaiting(id string) schemas.ActionResult {
	h.t.Helper()
	return h.resultEvent(schemas.DeriveID(id, "completed", schemas.OutcomeAwaitingApproval))
}

func (h *harness) resultEvent(eventID string) schemas.ActionResult {
	h.t.Helper()
	var e event.Event
	bustest.Eventually(h.t, wait, func() bool {
		var ok bool
		e, ok = h.event(eventID)
		return ok
	}, "no action.completed event "+eventID)
	var res schemas.ActionResult
	if err := json.Unmarshal(e.Data(), &res); err != nil {
		h.t.Fatal(err)
	}
	return res
}

// verification waits for the verification of a request.
func (h *harness) verification(id string) schemas.ActionVerification {
	h.t.Helper()
	var e event.Event
	bustest.Eventually(h.t, wait, func() bool {
		var ok bool
		e, ok = h.event(schemas.DeriveID(id, "verified"))
		return ok
	}, "no action.verified event for "+id)
	var v schemas.ActionVerification
	if err := json.Unmarshal(e.Data(), &v); err != nil {
		h.t.Fatal(err)
	}
	return v
}

// putJSON writes v under key in s.
func putJSON(t testing.TB, s schemas.Store, key string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := casLoop(bustest.Context(t, 10*time.Second), s, key, func([]byte, bool) ([]byte, error) { return b, nil }); err != nil {
		t.Fatal(err)
	}
}

// fakeExecutor records calls and answers with fn (success when nil).
type fakeExecutor struct {
	mu    sync.Mutex
	calls map[string]int
	total int
	fn    func(ctx context.Context, req schemas.ActionRequest, attempt int) (schemas.ActionResult, error)
}

func (f *fakeExecutor) Execute(ctx context.Context, req schemas.ActionRequest) (schemas.ActionResult, error) {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[req.ID]++
	f.total++
	attempt, fn := f.calls[req.ID], f.fn
	f.mu.Unlock()
	if fn != nil {
		return fn(ctx, req, attempt)
	}
	return schemas.ActionResult{Output: json.RawMessage(`{"ok":true}`)}, nil
}

func (f *fakeExecutor) callsFor(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[id]
}

func (f *fakeExecutor) totalCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.total
}

// httpError is an executor error with a status code, classified like the
// subjects' clients classify theirs.
type httpError struct{ status int }

func (e httpError) Error() string   { return fmt.Sprintf("HTTP %d", e.status) }
func (e httpError) Transient() bool { return e.status >= 500 || e.status == 429 }

// faultyStore fails every write once tripped, as a store behind a dead
// process would never see them.
type faultyStore struct {
	ControlStore
	tripped atomic.Bool
}

var errStoreDown = errors.New("store unreachable")

func (s *faultyStore) CompareAndSwap(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	if s.tripped.Load() {
		return 0, errStoreDown
	}
	return s.ControlStore.CompareAndSwap(ctx, key, value, rev)
}

// faultyBus fails every publish once tripped.
type faultyBus struct {
	Bus
	tripped atomic.Bool
}

func (b *faultyBus) Publish(ctx context.Context, subject string, e event.Event) error {
	if b.tripped.Load() {
		return errStoreDown
	}
	return b.Bus.Publish(ctx, subject, e)
}
