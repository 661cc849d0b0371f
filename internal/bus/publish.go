package bus

import (
	"context"
	"errors"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
)

// Ack is the server's acknowledgement of a stored event.
type Ack struct {
	Stream   string
	Sequence uint64
	// Duplicate is true when an event with the same id was already stored
	// within the stream's dedup window; nothing new was stored.
	Duplicate bool
}

// Publish stores an event on a subject and waits for the server's ack. The
// event's data is validated against its schema first, so no invalid event
// ever reaches a consumer. A repeat of an id inside the dedup window succeeds
// without storing a second copy.
func (b *Bus) Publish(ctx context.Context, subject string, e event.Event) error {
	_, err := b.PublishAck(ctx, subject, e)
	return err
}

// PublishAck is Publish returning the server's ack.
func (b *Bus) PublishAck(ctx context.Context, subject string, e event.Event) (Ack, error) {
	stream := streamOfSubject(b.subjects, subject)
	m, err := b.prepare(subject, e)
	if err != nil {
		b.metrics.published.WithLabelValues(stream, "error").Inc()
		return Ack{}, err
	}
	pa, err := b.js.PublishMsg(ctx, m)
	if err != nil {
		b.metrics.published.WithLabelValues(stream, "error").Inc()
		return Ack{}, fmt.Errorf("publish %s %s: %w", e.Type(), e.ID(), err)
	}
	result := "ok"
	if pa.Duplicate {
		result = "duplicate"
	}
	b.metrics.published.WithLabelValues(pa.Stream, result).Inc()
	return Ack{Stream: pa.Stream, Sequence: pa.Sequence, Duplicate: pa.Duplicate}, nil
}

// PublishAsync queues an event for publishing without waiting for the ack;
// observers use it so a slow server never delays a poll. Failures of queued
// publishes are counted and logged; WaitPublished waits for all of them.
// Validation errors and a full in-flight window are returned at once.
func (b *Bus) PublishAsync(subject string, e event.Event) error {
	m, err := b.prepare(subject, e)
	if err != nil {
		b.metrics.published.WithLabelValues(streamOfSubject(b.subjects, subject), "error").Inc()
		return err
	}
	b.acksMu.RLock()
	defer b.acksMu.RUnlock()
	if b.acksClosed {
		return fmt.Errorf("publish async %s %s: %w", e.Type(), e.ID(), nats.ErrConnectionClosed)
	}
	f, err := b.js.PublishMsgAsync(m)
	if err != nil {
		b.metrics.published.WithLabelValues(streamOfSubject(b.subjects, subject), "error").Inc()
		return fmt.Errorf("publish async %s %s: %w", e.Type(), e.ID(), err)
	}
	b.acks <- f
	return nil
}

// countAcks counts the outcome of every async publish, in publish order. It
// runs from Open until Close closes b.acks. A future resolves when its ack
// arrives, its publish fails, or the connection closes.
func (b *Bus) countAcks() {
	defer close(b.acksDone)
	for f := range b.acks {
		select {
		case pa := <-f.Ok():
			result := "ok"
			if pa.Duplicate {
				result = "duplicate"
			}
			b.metrics.published.WithLabelValues(pa.Stream, result).Inc()
		case <-f.Err():
			// counted by the async error handler
		}
	}
}

// WaitPublished blocks until every queued async publish has been acked or
// failed, or ctx is done.
func (b *Bus) WaitPublished(ctx context.Context) error {
	select {
	case <-b.js.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for %d async publishes: %w", b.js.PublishAsyncPending(), ctx.Err())
	}
}

func (b *Bus) prepare(subject string, e event.Event) (*nats.Msg, error) {
	if e.ID() == "" {
		return nil, errors.New("event has no id")
	}
	if err := b.validate.Validate(e.Type(), e.Data()); err != nil {
		return nil, fmt.Errorf("refusing to publish %s %s: %w", e.Type(), e.ID(), err)
	}
	return EncodeMsg(subject, e)
}
