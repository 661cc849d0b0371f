package bus

import (
	"context"
	"errors"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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
	f, err := b.js.PublishMsgAsync(m)
	if err != nil {
		b.metrics.published.WithLabelValues(streamOfSubject(b.subjects, subject), "error").Inc()
		return fmt.Errorf("publish async %s %s: %w", e.Type(), e.ID(), err)
	}
	go func() {
		// The future resolves when the ack arrives or the publish times out
		// (jetstream's async timeout), so this goroutine always ends.
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
	}()
	return nil
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

var _ = jetstream.PubAck{}
