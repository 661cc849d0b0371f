package bus_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/operator-dev/operator/internal/bus"
	"github.com/operator-dev/operator/internal/bus/bustest"
	"github.com/operator-dev/operator/schemas"
)

const violSubject = "operator.violation.ratelimiter.demo.node_down"

// counter reads a counter of reg with the given labels (0 when absent).
func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func withRegistry(reg *prometheus.Registry) func(*bus.Config) {
	return func(c *bus.Config) { c.Registerer = reg }
}

func TestPublishDeduplicatesByEventID(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := bustest.New(t, withRegistry(reg))
	ctx := bustest.Context(t, 10*time.Second)
	e := testEvent(t, "same-id", "s")
	a1, err := b.PublishAck(ctx, violSubject, e)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := b.PublishAck(ctx, violSubject, e)
	if err != nil {
		t.Fatal(err)
	}
	if a1.Duplicate || !a2.Duplicate || a1.Sequence != a2.Sequence {
		t.Fatalf("acks %+v then %+v, want the second to be a duplicate of the first", a1, a2)
	}
	info, err := b.StreamInfo(ctx, schemas.StreamViolations)
	if err != nil {
		t.Fatal(err)
	}
	if info.Messages != 1 {
		t.Fatalf("stream holds %d messages, want 1", info.Messages)
	}
	if got := counter(t, reg, "operator_bus_published_total", map[string]string{"result": "duplicate"}); got != 1 {
		t.Errorf("duplicate publishes counted %v, want 1", got)
	}
}

func TestPublishRefusesInvalidData(t *testing.T) {
	b := bustest.New(t)
	ctx := bustest.Context(t, 10*time.Second)
	e, err := schemas.NewEvent(schemas.EventSpec{Type: schemas.TypeViolation, Source: "/t", ID: "bad", Time: time.Now()},
		map[string]any{"subject": "ratelimiter"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, violSubject, e); !errors.Is(err, schemas.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	info, _ := b.StreamInfo(ctx, schemas.StreamViolations)
	if info.Messages != 0 {
		t.Fatalf("invalid event stored")
	}
}

func TestPublishAsync(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := bustest.New(t, withRegistry(reg))
	ctx := bustest.Context(t, 10*time.Second)
	for i := range 100 {
		if err := b.PublishAsync(violSubject, testEvent(t, fmt.Sprint("a", i), "s")); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.WaitPublished(ctx); err != nil {
		t.Fatal(err)
	}
	info, _ := b.StreamInfo(ctx, schemas.StreamViolations)
	if info.Messages != 100 {
		t.Fatalf("stored %d, want 100", info.Messages)
	}
	bustest.Eventually(t, 5*time.Second, func() bool {
		return counter(t, reg, "operator_bus_published_total", map[string]string{"result": "ok"}) == 100
	}, "every async publish counted as ok")
}

// rawConn connects a plain NATS client to b's listener, to put messages on
// the wire that the bus itself would refuse to publish.
func rawConn(t *testing.T, b *bus.Bus) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(b.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func rawPublish(t *testing.T, nc *nats.Conn, subject string, h nats.Header, data []byte) {
	t.Helper()
	reply, err := nc.RequestMsg(&nats.Msg{Subject: subject, Header: h, Data: data}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(reply.Data, []byte(`"error"`)) {
		t.Fatalf("publish refused: %s", reply.Data)
	}
}

// collect consumes with h in the background and returns a stop function
// that cancels and waits for Consume to return.
func collect(t *testing.T, b *bus.Bus, cfg bus.ConsumerConfig, h bus.Handler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Consume(ctx, cfg, h) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("consume: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func TestConsumeTerminatesPoisonAndKeepsGoing(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := bustest.New(t, bustest.WithListener, withRegistry(reg))
	nc := rawConn(t, b)

	good1 := testEvent(t, "good-1", "s")
	h1, _ := bus.Headers(good1)
	rawPublish(t, nc, violSubject, nats.Header{"Nats-Msg-Id": {"junk"}}, []byte("not an event"))
	invalid := nats.Header{}
	for k, v := range h1 {
		invalid[k] = v
	}
	invalid.Set("ce-id", "invalid-1")
	invalid.Set(nats.MsgIdHdr, "invalid-1")
	rawPublish(t, nc, violSubject, invalid, []byte(`{"subject":"only"}`))
	rawPublish(t, nc, violSubject, h1, good1.Data())

	var mu sync.Mutex
	var seen []string
	collect(t, b, bus.ConsumerConfig{Stream: schemas.StreamViolations, Durable: "poison"}, func(ctx context.Context, m *bus.Message) error {
		mu.Lock()
		seen = append(seen, m.Event.ID())
		mu.Unlock()
		return nil
	})
	bustest.Eventually(t, 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == 1
	}, "good message handled")

	// The consumer keeps going after poison.
	good2 := testEvent(t, "good-2", "s")
	if err := b.Publish(bustest.Context(t, 5*time.Second), violSubject, good2); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == 2
	}, "second good message handled")
	mu.Lock()
	if seen[0] != "good-1" || seen[1] != "good-2" {
		t.Errorf("handled %v", seen)
	}
	mu.Unlock()
	for _, reason := range []string{"undecodable", "schema_invalid"} {
		if got := counter(t, reg, "operator_bus_terminated_total", map[string]string{"reason": reason}); got != 1 {
			t.Errorf("terminated{reason=%s} = %v, want 1", reason, got)
		}
	}
}

func TestConsumeRetriesTransientErrors(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := bustest.New(t, withRegistry(reg))
	ctx := bustest.Context(t, 20*time.Second)
	for _, id := range []string{"transient", "permanent", "hopeless"} {
		if err := b.Publish(ctx, violSubject, testEvent(t, id, "s")); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	deliveries := map[string][]uint64{}
	acked := make(chan string, 10)
	collect(t, b, bus.ConsumerConfig{Stream: schemas.StreamViolations, Durable: "retry", MaxDeliver: 3,
		Backoff: []time.Duration{20 * time.Millisecond}}, func(ctx context.Context, m *bus.Message) error {
		mu.Lock()
		deliveries[m.Event.ID()] = append(deliveries[m.Event.ID()], m.NumDelivered)
		mu.Unlock()
		switch m.Event.ID() {
		case "transient":
			if m.NumDelivered == 1 {
				return errors.New("connection refused")
			}
			acked <- m.Event.ID()
			return nil
		case "permanent":
			return schemas.Permanent(errors.New("params do not match the catalog"))
		default:
			return errors.New("still down")
		}
	})
	select {
	case <-acked:
	case <-ctx.Done():
		t.Fatal("transient message never succeeded")
	}
	bustest.Eventually(t, 10*time.Second, func() bool {
		return counter(t, reg, "operator_bus_terminated_total", map[string]string{"reason": "max_deliver"}) == 1
	}, "hopeless message terminated after max deliver")
	mu.Lock()
	defer mu.Unlock()
	if got := deliveries["transient"]; len(got) != 2 || got[1] != 2 {
		t.Errorf("transient deliveries %v, want [1 2]", got)
	}
	if got := deliveries["permanent"]; len(got) != 1 {
		t.Errorf("permanent deliveries %v, want exactly one", got)
	}
	if got := deliveries["hopeless"]; len(got) != 3 {
		t.Errorf("hopeless deliveries %v, want 3 (MaxDeliver)", got)
	}
	if got := counter(t, reg, "operator_bus_terminated_total", map[string]string{"reason": "permanent"}); got != 1 {
		t.Errorf("terminated{permanent} = %v", got)
	}
	if got := counter(t, reg, "operator_bus_naked_total", nil); got != 3 {
		t.Errorf("naked = %v, want 3 (1 transient + 2 hopeless)", got)
	}
}

// TestGracefulDrainLosesNothing stops a consumer in the middle of a backlog
// and starts it again: every message is handled, and no acked message comes
// back.
func TestGracefulDrainLosesNothing(t *testing.T) {
	b := bustest.New(t)
	ctx := bustest.Context(t, 30*time.Second)
	const n = 300
	for i := range n {
		if err := b.PublishAsync(violSubject, testEvent(t, fmt.Sprint("m", i), "s")); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.WaitPublished(ctx); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	handled := map[string]int{}
	var count atomic.Int64
	handler := func(ctx context.Context, m *bus.Message) error {
		time.Sleep(2 * time.Millisecond) // simulated work, so the stop lands mid-backlog
		mu.Lock()
		handled[m.Event.ID()]++
		mu.Unlock()
		count.Add(1)
		return nil
	}
	cfg := bus.ConsumerConfig{Stream: schemas.StreamViolations, Durable: "drain", Workers: 4}
	stop := collect(t, b, cfg, handler)
	bustest.Eventually(t, 10*time.Second, func() bool { return count.Load() >= n/3 }, "first third handled")
	stop()
	first := count.Load()
	if first >= n {
		t.Fatalf("consumer finished the backlog (%d) before it could be stopped; the test proves nothing", first)
	}
	collect(t, b, cfg, handler)
	bustest.Eventually(t, 20*time.Second, func() bool { return count.Load() >= n }, "all handled after restart")
	mu.Lock()
	defer mu.Unlock()
	if len(handled) != n {
		t.Fatalf("handled %d distinct messages, want %d", len(handled), n)
	}
	for id, c := range handled {
		if c != 1 {
			t.Errorf("%s handled %d times", id, c)
		}
	}
}

func TestRecordReplayRoundTrip(t *testing.T) {
	src := bustest.New(t)
	ctx := bustest.Context(t, 20*time.Second)
	var want []event.Event
	for i := range 5 {
		e := testEvent(t, fmt.Sprint("rec-", i), fmt.Sprintf("ratelimiter/demo/hot_key/user %d%%", i))
		want = append(want, e)
		if err := src.Publish(ctx, violSubject, e); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	w := bus.NewRecordWriter(&buf)
	n, err := src.Record(ctx, schemas.StreamViolations, time.Time{}, w)
	if err != nil || n != 5 {
		t.Fatalf("recorded %d, %v", n, err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	recorded := buf.String()
	if !strings.Contains(recorded, `"ce-type":["io.operator.violation.v1"]`) || !strings.Contains(recorded, `"data":{`) {
		t.Fatalf("recording is not in the documented format:\n%s", recorded)
	}

	dst := bustest.New(t)
	n, dups, err := dst.Replay(ctx, bus.NewRecordReader(strings.NewReader(recorded)))
	if err != nil || n != 5 || dups != 0 {
		t.Fatalf("replayed %d (%d duplicates), %v", n, dups, err)
	}
	// Replaying again inside the dedup window stores nothing new.
	if n, dups, err := dst.Replay(ctx, bus.NewRecordReader(strings.NewReader(recorded))); err != nil || n != 5 || dups != 5 {
		t.Fatalf("second replay %d (%d duplicates), %v; want all 5 duplicates", n, dups, err)
	}
	var again bytes.Buffer
	w2 := bus.NewRecordWriter(&again)
	if n, err := dst.Record(ctx, schemas.StreamViolations, time.Time{}, w2); err != nil || n != 5 {
		t.Fatalf("re-recorded %d, %v", n, err)
	}
	_ = w2.Flush()

	r1, r2 := bus.NewRecordReader(strings.NewReader(recorded)), bus.NewRecordReader(&again)
	for i := 0; ; i++ {
		a, errA := r1.Next()
		c, errC := r2.Next()
		if errors.Is(errA, io.EOF) && errors.Is(errC, io.EOF) {
			break
		}
		if errA != nil || errC != nil {
			t.Fatalf("record %d: %v / %v", i, errA, errC)
		}
		if a.Subject != c.Subject || !bytes.Equal(a.Body(), c.Body()) {
			t.Errorf("record %d differs: %+v vs %+v", i, a, c)
		}
		for k, v := range a.Headers {
			if fmt.Sprint(c.Headers[k]) != fmt.Sprint(v) {
				t.Errorf("record %d header %s = %v, want %v", i, k, c.Headers[k], v)
			}
		}
		e, err := c.Event()
		if err != nil {
			t.Fatal(err)
		}
		sameEvent(t, e, want[i])
	}
}

func TestRecordSince(t *testing.T) {
	b := bustest.New(t)
	ctx := bustest.Context(t, 10*time.Second)
	var buf bytes.Buffer
	if n, err := b.Record(ctx, schemas.StreamViolations, time.Time{}, bus.NewRecordWriter(&buf)); err != nil || n != 0 {
		t.Fatalf("empty stream: %d, %v", n, err)
	}
	if err := b.Publish(ctx, violSubject, testEvent(t, "old", "s")); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Record(ctx, schemas.StreamViolations, time.Now().Add(time.Hour), bus.NewRecordWriter(&buf)); err != nil || n != 0 {
		t.Fatalf("since the future: %d, %v", n, err)
	}
	if n, err := b.Record(ctx, schemas.StreamViolations, time.Now().Add(-time.Hour), bus.NewRecordWriter(&buf)); err != nil || n != 1 {
		t.Fatalf("since an hour ago: %d, %v", n, err)
	}
}

func TestRecordReaderRefusesBadLines(t *testing.T) {
	for _, in := range []string{
		`{"subject":"a","headers":{},"data":{}}` + "\n" + `{not json`,
		`{"headers":{}}`,
		`{"subject":"a","bogus":1}`,
		`{"subject":"a","data":{},"data_base64":"AA=="}`,
	} {
		r := bus.NewRecordReader(strings.NewReader(in))
		var err error
		for err == nil {
			_, err = r.Next()
		}
		if errors.Is(err, io.EOF) || !strings.Contains(err.Error(), "line") {
			t.Errorf("%q: err = %v, want an error naming the line", in, err)
		}
	}
}

func TestRecordOfKeepsNonJSONBodiesExact(t *testing.T) {
	for _, body := range [][]byte{[]byte("plain text"), []byte(`{"a": 1}`), {0xff, 0x00}} {
		r := bus.RecordOf("s", time.Unix(0, 0), nil, body)
		if r.Data != nil {
			t.Errorf("%q kept as data, want data_base64", body)
		}
		if !bytes.Equal(r.Body(), body) {
			t.Errorf("body changed")
		}
	}
	if r := bus.RecordOf("s", time.Unix(0, 0), nil, []byte(`{"a":1}`)); r.Data == nil {
		t.Error("compact JSON not kept as data")
	}
}

func TestDeclareIsIdempotentAndAppliesLimits(t *testing.T) {
	b := bustest.New(t, bustest.WithListener)
	ctx := bustest.Context(t, 10*time.Second)
	if err := b.Declare(ctx); err != nil {
		t.Fatalf("second declare: %v", err)
	}
	other, err := bus.Open(ctx, bus.Config{URL: b.ClientURL(), Streams: map[string]bus.StreamLimits{
		schemas.StreamObservations: {MaxAge: time.Hour},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Declare(ctx); err != nil {
		t.Fatal(err)
	}
	info, err := b.StreamInfo(ctx, schemas.StreamObservations)
	if err != nil {
		t.Fatal(err)
	}
	if info.MaxAge != time.Hour {
		t.Errorf("max age %v after update, want 1h", info.MaxAge)
	}
	if info.Duplicates != bus.DefaultObservationsDuplicates {
		t.Errorf("duplicates %v", info.Duplicates)
	}
	act, _ := b.StreamInfo(ctx, schemas.StreamActions)
	if act.Duplicates != 10*time.Minute || act.MaxAge != 30*24*time.Hour {
		t.Errorf("actions stream %v/%v, want dedup 10m and 30d as designed", act.Duplicates, act.MaxAge)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  bus.Config
		ok   bool
	}{
		{"zero value", bus.Config{}, true},
		{"bad prefix", bus.Config{Prefix: "a b"}, false},
		{"replicas", bus.Config{Replicas: 7}, false},
		{"cert without key", bus.Config{URL: "nats://x", TLSCertFile: "c"}, false},
		{"url and embedded", bus.Config{URL: "nats://x", Embedded: bus.EmbeddedConfig{StoreDir: "/tmp/x"}}, false},
		{"unknown stream", bus.Config{Streams: map[string]bus.StreamLimits{"NOPE": {}}}, false},
	}
	for _, tt := range tests {
		if err := tt.cfg.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

func TestTailShowsStoredEventsOnce(t *testing.T) {
	b := bustest.New(t)
	pctx := bustest.Context(t, 10*time.Second)
	since := time.Now().Add(-time.Second)
	for _, id := range []string{"first", "second", "second"} {
		if err := b.Publish(pctx, violSubject, testEvent(t, id, "s")); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var got []string
	seen := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(got)
	}
	done := make(chan error, 1)
	go func() {
		done <- b.Tail(ctx, "operator.violation.>", since, func(subject string, e event.Event, err error) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, e.ID())
		})
	}()
	bustest.Eventually(t, 10*time.Second, func() bool { return seen() == 2 }, "tail replays the stored events")
	// Then live events, still without the duplicate.
	for _, id := range []string{"third", "third", "fourth"} {
		if err := b.Publish(pctx, violSubject, testEvent(t, id, "s")); err != nil {
			t.Fatal(err)
		}
	}
	bustest.Eventually(t, 10*time.Second, func() bool { return seen() >= 4 }, "tail sees live events")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"first", "second", "third", "fourth"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("tail saw %v, want %v (duplicate publishes must not show)", got, want)
	}
}
