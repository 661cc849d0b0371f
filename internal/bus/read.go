package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ReadEvents calls fn for every message of stream stored since the given
// time (zero: from the start), oldest first, ending at the message that was
// last when it began; unlike [Bus.Tail] it returns once it has caught up.
// A message that is not a CloudEvent reaches fn with a non-nil err. An error
// from fn stops the read and is returned.
func (b *Bus) ReadEvents(ctx context.Context, stream string, since time.Time, fn func(subject string, e event.Event, err error) error) error {
	return b.ReadFiltered(ctx, stream, "", since, fn)
}

// ReadFiltered is ReadEvents on the messages whose subject matches filter
// ("" matches all).
func (b *Bus) ReadFiltered(ctx context.Context, stream, filter string, since time.Time, fn func(subject string, e event.Event, err error) error) error {
	_, err := b.readStored(ctx, stream, filter, since, func(m jetstream.Msg, _ time.Time) error {
		e, err := DecodeEvent(m.Headers(), m.Data())
		return fn(m.Subject(), e, err)
	})
	return err
}

// readStored calls fn for the messages of stream stored since the given
// time, up to the one that was last when it began, and counts them.
func (b *Bus) readStored(ctx context.Context, stream, filter string, since time.Time, fn func(m jetstream.Msg, stored time.Time) error) (int, error) {
	s, err := b.js.Stream(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", stream, err)
	}
	last := s.CachedInfo().State.LastSeq
	if s.CachedInfo().State.Msgs == 0 {
		return 0, nil
	}
	occ := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if filter != "" {
		occ.FilterSubjects = []string{filter}
	}
	if !since.IsZero() {
		occ.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		occ.OptStartTime = &since
	}
	cons, err := s.OrderedConsumer(ctx, occ)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", stream, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", stream, err)
	}
	if info.NumPending == 0 {
		return 0, nil
	}
	n := 0
	for {
		msgs, err := cons.Fetch(256, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return n, fmt.Errorf("read %s: %w", stream, err)
		}
		got := 0
		for m := range msgs.Messages() {
			got++
			meta, err := m.Metadata()
			if err != nil {
				return n, fmt.Errorf("read %s: %w", stream, err)
			}
			if err := fn(m, meta.Timestamp); err != nil {
				return n, err
			}
			n++
			if meta.Sequence.Stream >= last || meta.NumPending == 0 {
				return n, nil
			}
		}
		if err := msgs.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return n, fmt.Errorf("read %s: %w", stream, err)
		}
		if got == 0 {
			return n, fmt.Errorf("read %s: no message after sequence %d", stream, last)
		}
		if err := ctx.Err(); err != nil {
			return n, err
		}
	}
}
