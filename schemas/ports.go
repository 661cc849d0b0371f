package schemas

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"
)

// The ports the stages share: what the evaluator, the actuator and the
// diagnoser need from the bus. internal/bus satisfies them; tests use
// small fakes. They live here, beside the errors they return, so every
// stage names them the same way and none imports another.

// Store is a key-value bucket with compare-and-swap (BucketEvaluatorState,
// BucketActuatorLedger, BucketControl). Implementations must be safe for
// concurrent use.
type Store interface {
	// Get returns the value and revision of key, or an error matching
	// ErrKeyNotFound.
	Get(ctx context.Context, key string) (value []byte, revision uint64, err error)
	// CompareAndSwap writes value if key is at revision (0: key must not
	// exist) and returns the new revision, or an error matching
	// ErrRevisionConflict.
	CompareAndSwap(ctx context.Context, key string, value []byte, revision uint64) (newRevision uint64, err error)
}

// Publisher publishes one event on a NATS subject. The event id is the
// deduplication id: publishing one id twice within the stream's duplicate
// window stores it once. Implementations must be safe for concurrent use.
type Publisher interface {
	Publish(ctx context.Context, subject string, e event.Event) error
}

// PublisherFunc adapts a function to Publisher.
type PublisherFunc func(ctx context.Context, subject string, e event.Event) error

// Publish calls f.
func (f PublisherFunc) Publish(ctx context.Context, subject string, e event.Event) error {
	return f(ctx, subject, e)
}
