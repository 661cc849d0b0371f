package observers

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/operator-dev/operator/schemas"
)

type fakePublisher struct {
	mu       sync.Mutex
	subjects []string
	events   []event.Event
}

func (p *fakePublisher) PublishAsync(subject string, e event.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.subjects = append(p.subjects, subject)
	p.events = append(p.events, e)
	return nil
}

func (p *fakePublisher) observations(t *testing.T) []schemas.Observation {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	v, err := schemas.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	var out []schemas.Observation
	for _, e := range p.events {
		if err := v.Validate(e.Type(), e.Data()); err != nil {
			t.Fatalf("published an invalid observation: %v", err)
		}
		var o schemas.Observation
		if err := json.Unmarshal(e.Data(), &o); err != nil {
			t.Fatal(err)
		}
		out = append(out, o)
	}
	return out
}

func TestRunPollsOnInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pub := &fakePublisher{}
		calls := 0
		src := SourceFunc(func(ctx context.Context) (State, error) {
			calls++
			return State{Value: map[string]any{"calls": calls}}, nil
		})
		r, err := New(Config{Subject: "demo", Instance: "i1", Interval: time.Second}, src, pub)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()
		time.Sleep(10*time.Second + 500*time.Millisecond)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		obs := pub.observations(t)
		// One poll at once, then one per second ±10 % jitter.
		if len(obs) < 10 || len(obs) > 12 {
			t.Fatalf("%d observations in 10.5s at 1s interval", len(obs))
		}
		ids := map[string]bool{}
		for i, o := range obs {
			if o.Subject != "demo" || o.Instance != "i1" || o.Observer.IntervalMS != 1000 {
				t.Errorf("observation %d: %+v", i, o)
			}
			if i > 0 && !o.ObservedAt.After(obs[i-1].ObservedAt) {
				t.Errorf("observation %d not after the previous one", i)
			}
			id := pub.events[i].ID()
			if ids[id] {
				t.Errorf("duplicate id %s", id)
			}
			ids[id] = true
		}
		if pub.subjects[0] != "operator.obs.demo.i1" {
			t.Errorf("published on %s", pub.subjects[0])
		}
	})
}

func TestPartialObservationIsPublished(t *testing.T) {
	reg := prometheus.NewRegistry()
	pub := &fakePublisher{}
	src := SourceFunc(func(ctx context.Context) (State, error) {
		return State{Value: map[string]any{"nodes": []any{}}, Errors: []schemas.ObserverError{{Source: "node n2", Message: "connection refused"}}}, nil
	})
	r, err := New(Config{Subject: "demo", Instance: "i1", Registerer: reg}, src, pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Poll(context.Background(), time.Unix(100, 0)); err != nil {
		t.Fatal(err)
	}
	obs := pub.observations(t)
	if len(obs) != 1 || len(obs[0].Observer.Errors) != 1 || obs[0].Observer.Errors[0].Source != "node n2" {
		t.Fatalf("observations %+v", obs)
	}
	if got := testutil.ToFloat64(r.metrics.polls.WithLabelValues("demo", "i1", "partial")); got != 1 {
		t.Errorf("partial polls = %v", got)
	}
}

func TestFailedPollPublishesNothing(t *testing.T) {
	pub := &fakePublisher{}
	src := SourceFunc(func(ctx context.Context) (State, error) { return State{}, errors.New("no route") })
	r, _ := New(Config{Subject: "demo", Instance: "i1"}, src, pub)
	if err := r.Poll(context.Background(), time.Unix(100, 0)); err == nil {
		t.Fatal("no error")
	}
	if len(pub.events) != 0 {
		t.Fatal("a failed poll published an observation")
	}
	if got := testutil.ToFloat64(r.metrics.polls.WithLabelValues("demo", "i1", "failed")); got != 1 {
		t.Errorf("failed polls = %v", got)
	}
}

func TestPollTimeoutReachesSource(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pub := &fakePublisher{}
		src := SourceFunc(func(ctx context.Context) (State, error) {
			<-ctx.Done() // a source that hangs until its deadline
			return State{Value: map[string]any{}, Errors: []schemas.ObserverError{{Source: "slow", Message: ctx.Err().Error()}}}, nil
		})
		r, _ := New(Config{Subject: "demo", Instance: "i1", Interval: time.Second}, src, pub)
		start := time.Now()
		if err := r.Poll(context.Background(), start); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took != 800*time.Millisecond {
			t.Errorf("poll took %v, want the default timeout of 80%% of the interval", took)
		}
		if obs := pub.observations(t); obs[0].Observer.Errors[0].Message != context.DeadlineExceeded.Error() {
			t.Errorf("errors %+v", obs[0].Observer.Errors)
		}
	})
}

func TestSamePollSameID(t *testing.T) {
	pub := &fakePublisher{}
	src := SourceFunc(func(ctx context.Context) (State, error) { return State{Value: map[string]any{}}, nil })
	r, _ := New(Config{Subject: "demo", Instance: "i1"}, src, pub)
	at := time.Unix(100, 5)
	_ = r.Poll(context.Background(), at)
	_ = r.Poll(context.Background(), at)
	_ = r.Poll(context.Background(), at.Add(time.Second))
	if pub.events[0].ID() != pub.events[1].ID() || pub.events[0].ID() == pub.events[2].ID() {
		t.Fatal("observation ids must be derived from subject, instance and time")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{
		{Subject: "", Instance: "i"},
		{Subject: "a.b", Instance: "i"},
		{Subject: "s", Instance: "i", Jitter: 1.5},
		{Subject: "s", Instance: "i", Interval: -time.Second},
	} {
		if _, err := New(c, nil, nil); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}
