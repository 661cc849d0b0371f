package bus

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/operator-dev/operator/schemas"
)

// Declare creates or updates Operator's streams and KV buckets with the
// configured replicas and limits. It is idempotent and safe to call from
// every component at start-up; nothing is ever created implicitly elsewhere.
func (b *Bus) Declare(ctx context.Context) error {
	storage := jetstream.FileStorage
	if b.cfg.MemoryStorage {
		storage = jetstream.MemoryStorage
	}
	streams := b.subjects.StreamSubjects()
	names := make([]string, 0, len(streams))
	for n := range streams {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		l := b.cfg.limits(name)
		sc := jetstream.StreamConfig{
			Name:        name,
			Description: "Operator " + name,
			Subjects:    streams[name],
			Retention:   jetstream.LimitsPolicy,
			Discard:     jetstream.DiscardOld,
			MaxAge:      l.MaxAge,
			MaxBytes:    l.MaxBytes,
			MaxMsgs:     -1,
			Duplicates:  l.Duplicates,
			Storage:     storage,
			Replicas:    b.cfg.replicas(),
			AllowDirect: true,
		}
		if _, err := b.js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("declare stream %s: %w", name, err)
		}
	}
	for _, kc := range b.buckets(storage) {
		if _, err := b.js.CreateOrUpdateKeyValue(ctx, kc); err != nil {
			return fmt.Errorf("declare bucket %s: %w", kc.Bucket, err)
		}
	}
	return nil
}

func (b *Bus) buckets(storage jetstream.StorageType) []jetstream.KeyValueConfig {
	r := b.cfg.replicas()
	return []jetstream.KeyValueConfig{
		{Bucket: schemas.BucketEvaluatorState, Description: "alert state per fingerprint", History: 1, Storage: storage, Replicas: r},
		// Ledger entries outlive every redelivery and dedup window; after a
		// month a request id cannot come back.
		{Bucket: schemas.BucketActuatorLedger, Description: "action request id to outcome", History: 1, TTL: DefaultLedgerTTL, Storage: storage, Replicas: r},
		{Bucket: schemas.BucketControl, Description: "kill switch, modes, approvals, budgets", History: 5, Storage: storage, Replicas: r},
	}
}

// StreamInfo is what Operator reports about a stream.
type StreamInfo struct {
	Name       string
	Subjects   []string
	Messages   uint64
	Bytes      uint64
	FirstSeq   uint64
	LastSeq    uint64
	MaxAge     time.Duration
	MaxBytes   int64
	Duplicates time.Duration
	Replicas   int
	Consumers  int
}

// StreamInfo returns the current configuration and state of a stream.
func (b *Bus) StreamInfo(ctx context.Context, name string) (StreamInfo, error) {
	s, err := b.js.Stream(ctx, name)
	if err != nil {
		return StreamInfo{}, fmt.Errorf("stream %s: %w", name, err)
	}
	i := s.CachedInfo()
	return StreamInfo{
		Name: i.Config.Name, Subjects: i.Config.Subjects,
		Messages: i.State.Msgs, Bytes: i.State.Bytes, FirstSeq: i.State.FirstSeq, LastSeq: i.State.LastSeq,
		MaxAge: i.Config.MaxAge, MaxBytes: i.Config.MaxBytes, Duplicates: i.Config.Duplicates,
		Replicas: i.Config.Replicas, Consumers: i.State.Consumers,
	}, nil
}
