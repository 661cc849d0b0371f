package bus_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/operator-dev/operator/internal/bus"
	"github.com/operator-dev/operator/internal/bus/bustest"
	"github.com/operator-dev/operator/schemas"
)

// benchEvents builds n distinct violation events (unique ids, so none is
// deduplicated), each about 400 bytes on the wire.
func benchEvents(b *testing.B, n int) []event.Event {
	out := make([]event.Event, n)
	for i := range out {
		out[i] = testEvent(b, fmt.Sprint("bench-", i), "ratelimiter/demo/node_down/n1")
	}
	return out
}

func BenchmarkPublishSync(b *testing.B) {
	bs := bustest.New(b)
	evs := benchEvents(b, b.N)
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		if err := bs.Publish(ctx, violSubject, evs[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkPublishAsync(b *testing.B) {
	bs := bustest.New(b)
	evs := benchEvents(b, b.N)
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		if err := bs.PublishAsync(violSubject, evs[i]); err != nil {
			b.Fatal(err)
		}
	}
	if err := bs.WaitPublished(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkConsume measures decode + schema validation + handler + ack of a
// backlog through one durable consumer.
func BenchmarkConsume(b *testing.B) {
	for _, workers := range []int{1, 4} {
		b.Run(fmt.Sprint("workers=", workers), func(b *testing.B) {
			bs := bustest.New(b)
			ctx := context.Background()
			for _, e := range benchEvents(b, b.N) {
				if err := bs.PublishAsync(violSubject, e); err != nil {
					b.Fatal(err)
				}
			}
			if err := bs.WaitPublished(ctx); err != nil {
				b.Fatal(err)
			}
			var n atomic.Int64
			done := make(chan struct{})
			cctx, cancel := context.WithCancel(ctx)
			b.ResetTimer()
			go func() {
				_ = bs.Consume(cctx, bus.ConsumerConfig{Stream: schemas.StreamViolations, Durable: "bench", Workers: workers},
					func(ctx context.Context, m *bus.Message) error {
						if n.Add(1) == int64(b.N) {
							close(done)
						}
						return nil
					})
			}()
			select {
			case <-done:
			case <-time.After(5 * time.Minute):
				b.Fatal("backlog not consumed")
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			cancel()
		})
	}
}
