package bus

import (
	"context"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
)

// Tail calls fn for every event published on subjects matching filter from
// now on (a live view, not a durable consumer: nothing is acked or stored).
// Messages that are not CloudEvents reach fn with a non-nil err. fn runs on
// one goroutine, in arrival order. Tail blocks until ctx is done.
func (b *Bus) Tail(ctx context.Context, filter string, fn func(subject string, e event.Event, err error)) error {
	if filter == "" {
		filter = b.subjects.All()
	}
	sub, err := b.nc.Subscribe(filter, func(m *nats.Msg) {
		e, err := DecodeEvent(m.Header, m.Data)
		fn(m.Subject, e, err)
	})
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", filter, err)
	}
	if err := b.nc.FlushWithContext(ctx); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("subscribe %s: %w", filter, err)
	}
	<-ctx.Done()
	return sub.Drain()
}
