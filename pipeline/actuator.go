package pipeline

import (
	"context"

	"github.com/operator-dev/operator/actuators"
	"github.com/operator-dev/operator/internal/bus"
	"github.com/operator-dev/operator/schemas"
)

// ActuatorDeps opens the actuator's buckets and adapts the bus to it.
func ActuatorDeps(ctx context.Context, b *bus.Bus, subjects map[string]actuators.Subject) (actuators.Deps, error) {
	d := actuators.Deps{Bus: actuatorBus{b}, Subjects: subjects}
	var err error
	if d.Alerts, err = b.KV(ctx, schemas.BucketEvaluatorState); err != nil {
		return d, err
	}
	if d.Ledger, err = b.KV(ctx, schemas.BucketActuatorLedger); err != nil {
		return d, err
	}
	d.Control, err = b.KV(ctx, schemas.BucketControl)
	return d, err
}

// RunActuator runs an actuator worker for subjects on b until ctx is done.
func RunActuator(ctx context.Context, b *bus.Bus, cfg actuators.Config, subjects map[string]actuators.Subject) error {
	deps, err := ActuatorDeps(ctx, b, subjects)
	if err != nil {
		return err
	}
	w, err := actuators.New(cfg, deps)
	if err != nil {
		return err
	}
	return w.Run(ctx)
}

// actuatorBus adapts internal/bus to actuators.Bus.
type actuatorBus struct{ *bus.Bus }

// Consume runs a durable consumer for the actuator.
func (a actuatorBus) Consume(ctx context.Context, spec actuators.ConsumerSpec, h actuators.Handler) error {
	cfg := bus.ConsumerConfig{
		Stream: spec.Stream, Durable: spec.Name, Description: spec.Description,
		FilterSubjects: []string{spec.Filter}, MaxDeliver: spec.MaxDeliver, AckWait: spec.AckWait,
		Backoff: spec.Backoff, Workers: spec.Workers, HandleTimeout: spec.HandleTimeout,
	}
	return a.Bus.Consume(ctx, cfg, func(ctx context.Context, m *bus.Message) error {
		return h(ctx, &actuators.Delivery{Event: m.Event, NumDelivered: m.NumDelivered, InProgress: m.InProgress})
	})
}
