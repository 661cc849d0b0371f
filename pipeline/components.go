package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/operator-dev/operator/diagnosis"
	"github.com/operator-dev/operator/evaluators"
	"github.com/operator-dev/operator/internal/bus"
	"github.com/operator-dev/operator/observers"
	"github.com/operator-dev/operator/schemas"
)

// OpenBus connects (or embeds a server) and declares Operator's streams and
// buckets, so every component works against a fresh server.
func OpenBus(ctx context.Context, cfg bus.Config) (*bus.Bus, error) {
	b, err := bus.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := b.Declare(ctx); err != nil {
		_ = b.Close()
		return nil, err
	}
	return b, nil
}

// RunEvaluator runs the rule engine for the rule sets' subjects on a durable
// consumer of the observations stream until ctx is done. Several evaluators
// may share the consumer (same subjects): JetStream spreads the
// observations and the state bucket's compare-and-swap keeps them consistent.
func RunEvaluator(ctx context.Context, b *bus.Bus, sets []*evaluators.RuleSet, cfg evaluators.Config, workers int) error {
	kv, err := b.KV(ctx, schemas.BucketEvaluatorState)
	if err != nil {
		return err
	}
	eng, err := evaluators.NewEngine(cfg, sets, kv, b)
	if err != nil {
		return err
	}
	var filters []string
	for _, s := range eng.Subjects() {
		fl, err := b.Subjects().Observations(s)
		if err != nil {
			return err
		}
		filters = append(filters, fl)
	}
	cc := bus.ConsumerConfig{
		Stream:         schemas.StreamObservations,
		Durable:        "evaluator-" + strings.Join(eng.Subjects(), "-"),
		Description:    "operator evaluate: " + strings.Join(eng.Subjects(), ", "),
		FilterSubjects: filters,
		Workers:        workers,
	}
	src := evaluators.SourceFunc(func(ctx context.Context, handle func(context.Context, event.Event) error) error {
		return b.Consume(ctx, cc, func(ctx context.Context, m *bus.Message) error { return handle(ctx, m.Event) })
	})
	if cfg.Logger != nil {
		cfg.Logger.Info("evaluating", "subjects", eng.Subjects(), "durable", cc.Durable, "workers", workers)
	}
	return eng.Run(ctx, src)
}

// RunObserver polls src and publishes its observations on b until ctx is
// done, then waits for the last publishes.
func RunObserver(ctx context.Context, b *bus.Bus, cfg observers.Config, src observers.Source) error {
	cfg.Subjects = b.Subjects()
	r, err := observers.New(cfg, src, b)
	if err != nil {
		return fmt.Errorf("observer %s/%s: %w", cfg.Subject, cfg.Instance, err)
	}
	err = r.Run(ctx)
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bus.DefaultConnectTimeout)
	defer cancel()
	return errors.Join(err, b.WaitPublished(wctx))
}

// DiagnoserWorkers is how many violations the pipeline's diagnoser explains
// at once: a burst of violations (one fault breaks several invariants) is
// diagnosed in parallel.
const DiagnoserWorkers = 4

// RunDiagnoser runs the diagnoser on a durable consumer of the violations
// stream until ctx is done. Several diagnosers may share the consumer.
func RunDiagnoser(ctx context.Context, b *bus.Bus, cfg diagnosis.Config, subjects map[string]diagnosis.Subject, reasoner diagnosis.Reasoner, workers int) error {
	alerts, err := b.KV(ctx, schemas.BucketEvaluatorState)
	if err != nil {
		return err
	}
	d, err := diagnosis.New(cfg, diagnosis.Deps{Events: b, Alerts: alerts, Publisher: b, Subjects: subjects, Reasoner: reasoner})
	if err != nil {
		return err
	}
	filter, err := b.Subjects().Violations("")
	timeout := cmp.Or(cfg.Timeout, diagnosis.DefaultTimeout)
	if err != nil {
		return err
	}
	cc := bus.ConsumerConfig{
		Stream:         schemas.StreamViolations,
		Durable:        "diagnosis",
		Description:    "operator diagnose: explains every firing violation",
		FilterSubjects: []string{filter},
		Workers:        workers,
		// An LLM may take tens of seconds; the consumer's ack wait must
		// outlast the diagnosis.
		HandleTimeout: timeout + 5*time.Second,
		AckWait:       timeout + 10*time.Second,
	}
	src := diagnosisFeed(func(ctx context.Context, handle func(context.Context, event.Event) error) error {
		return b.Consume(ctx, cc, func(ctx context.Context, m *bus.Message) error { return handle(ctx, m.Event) })
	})
	return d.Run(ctx, src)
}

// diagnosisFeed adapts a function to diagnosis.Violations.
type diagnosisFeed func(ctx context.Context, handle func(context.Context, event.Event) error) error

func (f diagnosisFeed) Consume(ctx context.Context, handle func(context.Context, event.Event) error) error {
	return f(ctx, handle)
}
