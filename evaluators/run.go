package evaluators

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/operator-dev/operator/schemas"
)

// Source delivers observation events to a handler until ctx is done, then
// returns after the handler calls in flight have finished. A handler error
// means the event was not processed: the source redelivers it later, or
// gives up on it when the error wraps schemas.ErrPermanent (as
// ErrInvalidObservation and ErrNoRules do). The pipeline wraps internal/bus's
// durable consumer into a Source.
type Source interface {
	Consume(ctx context.Context, handle func(ctx context.Context, ev event.Event) error) error
}

// SourceFunc adapts a function to Source.
type SourceFunc func(ctx context.Context, handle func(ctx context.Context, ev event.Event) error) error

// Consume calls f.
func (f SourceFunc) Consume(ctx context.Context, handle func(ctx context.Context, ev event.Event) error) error {
	return f(ctx, handle)
}

// Run is the consumer loop of `operator evaluate`: it feeds every event
// from src to Observe and checks for stale instances every
// StaleCheckInterval, until ctx is done. It returns once both have stopped,
// with src's error, if any.
//
// Run is the only place in this package that reads the wall clock: it
// stamps each observation's arrival and drives the staleness ticker, because
// observations that stop arriving produce no event time to judge by. The
// alerts it fires still carry event times (the last observation's time plus
// stale_after). A freshly started Run counts silence from its own start, so
// a backlog it has not consumed yet does not look stale.
func (e *Engine) Run(ctx context.Context, src Source) error {
	started := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(e.cfg.StaleCheckInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				if err := e.checkStale(ctx, now, started); err != nil && ctx.Err() == nil {
					e.log.Warn("staleness check failed", "error", err)
				}
			}
		}
	}()

	err := src.Consume(ctx, func(ctx context.Context, ev event.Event) error {
		err := e.Observe(ctx, ev, time.Now())
		if err != nil {
			level := "transient"
			if errors.Is(err, schemas.ErrPermanent) {
				level = "permanent"
			}
			e.log.Warn("observation not processed", "event_id", ev.ID(), "kind", level, "error", err)
		}
		return err
	})
	cancel()
	wg.Wait()
	return err
}
