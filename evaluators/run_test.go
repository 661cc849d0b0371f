package evaluators

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// TestRunStalenessTicker runs the consumer loop in a synctest bubble: one
// observation arrives, then nothing; the wall-clock ticker must fire
// observer_stale at the event time the instance went stale, and Run must
// stop cleanly when its context ends.
func TestRunStalenessTicker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder(t)
		rules := parseRules(t, demoRules+"\nstale_after: 3s\n")
		e, err := NewEngine(Config{StaleCheckInterval: time.Second}, rules, &MemoryStore{}, rec)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		src := SourceFunc(func(ctx context.Context, handle func(context.Context, event.Event) error) error {
			if err := handle(ctx, observationEvent(t, "demo", "i1", "o1", start, demoState(true))); err != nil {
				return err
			}
			<-ctx.Done()
			return nil
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx, src) }()

		time.Sleep(3 * time.Second)
		synctest.Wait()
		if got := rec.lines(); len(got) != 0 {
			t.Fatalf("stale before stale_after: %v", got)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := rec.lines(); len(got) != 1 || !strings.HasPrefix(got[0], "firing observer_stale/ ") {
			t.Fatalf("events %v, want observer_stale firing", got)
		}
		// The firing carries the event time the instance went stale, not
		// the tick's wall time.
		if got := rec.all()[0].ev.Time(); !got.Equal(start.Add(3 * time.Second)) {
			t.Errorf("observer_stale at %v, want %v", got, start.Add(3*time.Second))
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	})
}

// TestRunReportsPermanentErrors: the handler's error reaches the source,
// wrapped so the source can tell permanent from transient.
func TestRunReportsPermanentErrors(t *testing.T) {
	e := newTestEngine(t, parseRules(t, demoRules), &MemoryStore{}, newRecorder(t))
	var got error
	src := SourceFunc(func(ctx context.Context, handle func(context.Context, event.Event) error) error {
		got = handle(ctx, observationEvent(t, "other", "i1", "o1", at(0), map[string]any{}))
		return nil
	})
	if err := e.Run(context.Background(), src); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(got, ErrNoRules) {
		t.Fatalf("handler returned %v, want ErrNoRules", got)
	}
}
