package bus

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"
)

// Tail calls fn for every event stored on subjects matching filter, from now
// on, or from since when it is not zero. It reads the streams, not the core
// subjects, so a publish the server dropped as a duplicate is not shown.
// Nothing is acked or left behind (ordered, ephemeral consumers). Messages
// that are not CloudEvents reach fn with a non-nil err. Calls to fn are
// serialized. Tail blocks until ctx is done and returns after the last fn.
func (b *Bus) Tail(ctx context.Context, filter string, since time.Time, fn func(subject string, e event.Event, err error)) error {
	if filter == "" {
		filter = b.subjects.All()
	}
	streams := b.subjects.StreamSubjects()
	names := make([]string, 0, len(streams))
	for name, subs := range streams {
		for _, s := range subs {
			if subjectsOverlap(filter, s) {
				names = append(names, name)
				break
			}
		}
	}
	if len(names) == 0 {
		return fmt.Errorf("filter %q matches none of Operator's streams", filter)
	}
	sort.Strings(names)
	var mu sync.Mutex
	var running []jetstream.ConsumeContext
	stopAll := func() {
		for _, cc := range running {
			cc.Stop()
			<-cc.Closed()
		}
	}
	for _, name := range names {
		cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverNewPolicy}
		if !since.IsZero() {
			cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
		}
		c, err := b.js.OrderedConsumer(ctx, name, cfg)
		if err != nil {
			stopAll()
			return fmt.Errorf("tail %s: %w", name, err)
		}
		cc, err := c.Consume(func(m jetstream.Msg) {
			e, err := DecodeEvent(m.Headers(), m.Data())
			mu.Lock()
			defer mu.Unlock()
			fn(m.Subject(), e, err)
		})
		if err != nil {
			stopAll()
			return fmt.Errorf("tail %s: %w", name, err)
		}
		running = append(running, cc)
	}
	<-ctx.Done()
	stopAll()
	return nil
}

// subjectsOverlap reports whether some subject matches both patterns.
func subjectsOverlap(a, b string) bool {
	at, bt := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(at) && i < len(bt); i++ {
		x, y := at[i], bt[i]
		if x == ">" || y == ">" {
			return true
		}
		if x != "*" && y != "*" && x != y {
			return false
		}
	}
	return len(at) == len(bt)
}
