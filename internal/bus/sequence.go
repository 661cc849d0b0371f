package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"
)

// A StreamRead says which messages of one stream [Bus.ReadStream] delivers.
// Sequences are the stream's own: a reader that remembers the last one it
// saw resumes exactly after it, with nothing missed and nothing twice.
type StreamRead struct {
	// Stream is the stream's name.
	Stream string
	// Filter keeps the messages whose subject matches it ("" keeps all).
	Filter string
	// After skips every message at or below this sequence.
	After uint64
	// Since, when After is 0, starts at the first message stored at or
	// after this time; both zero start at the beginning.
	Since time.Time
	// Through ends the read once the message at this sequence, or the last
	// one stored, has been delivered. 0 keeps reading, delivering messages
	// as they are stored, until ctx is done.
	Through uint64
	// LastPerSubject delivers only the newest message of each subject
	// among those stored when the read starts, then every later one: for
	// streams of snapshots, where only the latest counts.
	LastPerSubject bool
}

// A StoredEvent is one message of a stream with its place there.
type StoredEvent struct {
	Sequence uint64
	Subject  string
	// Stored is when the server stored it (wall time).
	Stored time.Time
	Event  event.Event
	// Err is set when the message is not a CloudEvent; Event is then empty.
	Err error
}

// ReadStream calls fn for the messages r selects, in sequence order. An
// error from fn stops the read and is returned. A read without Through
// blocks until ctx is done and then returns nil.
func (b *Bus) ReadStream(ctx context.Context, r StreamRead, fn func(StoredEvent) error) error {
	return b.readFrom(ctx, r, func(m jetstream.Msg, meta *jetstream.MsgMetadata) error {
		e, err := DecodeEvent(m.Headers(), m.Data())
		return fn(StoredEvent{Sequence: meta.Sequence.Stream, Subject: m.Subject(), Stored: meta.Timestamp, Event: e, Err: err})
	})
}

// StreamPosition returns the sequences of the first and the last message
// stream holds; an empty stream has first = last+1.
func (b *Bus) StreamPosition(ctx context.Context, stream string) (first, last uint64, err error) {
	s, err := b.js.Stream(ctx, stream)
	if err != nil {
		return 0, 0, fmt.Errorf("stream %s: %w", stream, err)
	}
	st := s.CachedInfo().State
	return st.FirstSeq, st.LastSeq, nil
}

// A BucketRead says which changes of a KV bucket [Bus.ReadBucket]
// delivers. Revisions play the part of sequences: a read from After gives
// every key that changed since, once, at its latest revision (older
// revisions a bucket keeps as history are skipped), then, without Through,
// every later revision.
type BucketRead struct {
	Bucket string
	// After skips revisions at or below it.
	After uint64
	// Through ends the read at this revision or the last one; 0 keeps
	// reading until ctx is done.
	Through uint64
}

// A KVChange is a key's latest revision: a value written, or the key
// deleted.
type KVChange struct {
	Key      string
	Value    []byte
	Revision uint64
	Deleted  bool
	// Stored is when the server stored the revision (wall time).
	Stored time.Time
}

// ReadBucket calls fn for the changes r selects, oldest revision first.
// Keys written in another escaping scheme are skipped. An error from fn
// stops the read and is returned.
func (b *Bus) ReadBucket(ctx context.Context, r BucketRead, fn func(KVChange) error) error {
	prefix := "$KV." + r.Bucket + "."
	sr := StreamRead{Stream: bucketStream(r.Bucket), After: r.After, Through: r.Through, LastPerSubject: true}
	return b.readFrom(ctx, sr, func(m jetstream.Msg, meta *jetstream.MsgMetadata) error {
		key, err := decodeKey(strings.TrimPrefix(m.Subject(), prefix))
		if err != nil {
			return nil
		}
		op := m.Headers().Get("KV-Operation")
		return fn(KVChange{Key: key, Value: m.Data(), Revision: meta.Sequence.Stream,
			Deleted: op == "DEL" || op == "PURGE", Stored: meta.Timestamp})
	})
}

// BucketPosition is [Bus.StreamPosition] for a KV bucket: its first and
// last revisions.
func (b *Bus) BucketPosition(ctx context.Context, bucket string) (first, last uint64, err error) {
	return b.StreamPosition(ctx, bucketStream(bucket))
}

// bucketStream is the stream that holds a KV bucket.
func bucketStream(bucket string) string { return "KV_" + bucket }

// readFrom runs an ordered, ephemeral consumer for r and calls fn for each
// message it selects.
func (b *Bus) readFrom(ctx context.Context, r StreamRead, fn func(jetstream.Msg, *jetstream.MsgMetadata) error) error {
	if r.Through != 0 && r.Through <= r.After {
		return nil
	}
	s, err := b.js.Stream(ctx, r.Stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", r.Stream, err)
	}
	st := s.CachedInfo().State
	if r.Through != 0 && (st.Msgs == 0 || st.LastSeq <= r.After) {
		return nil
	}
	occ := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if r.Filter != "" {
		occ.FilterSubjects = []string{r.Filter}
	}
	switch {
	case r.LastPerSubject:
		// The server needs a filter to pick the last message per subject.
		if r.Filter == "" {
			occ.FilterSubjects = []string{">"}
		}
		occ.DeliverPolicy = jetstream.DeliverLastPerSubjectPolicy
	case r.After > 0:
		occ.DeliverPolicy, occ.OptStartSeq = jetstream.DeliverByStartSequencePolicy, r.After+1
	case !r.Since.IsZero():
		since := r.Since
		occ.DeliverPolicy, occ.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	cons, err := s.OrderedConsumer(ctx, occ)
	if err != nil {
		return fmt.Errorf("read %s: %w", r.Stream, err)
	}
	if r.Through != 0 {
		info, err := cons.Info(ctx)
		if err != nil {
			return fmt.Errorf("read %s: %w", r.Stream, err)
		}
		if info.NumPending == 0 {
			return nil
		}
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("read %s: %w", r.Stream, err)
	}
	defer it.Stop()
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				if r.Through == 0 {
					return nil // a follow ends when its reader leaves
				}
				return ctx.Err()
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return fmt.Errorf("read %s: %w", r.Stream, err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("read %s: %w", r.Stream, err)
		}
		seq := meta.Sequence.Stream
		if r.Through != 0 && seq > r.Through {
			return nil
		}
		if seq > r.After {
			if err := fn(m, meta); err != nil {
				return err
			}
		}
		if r.Through != 0 && (seq >= r.Through || meta.NumPending == 0) {
			return nil
		}
	}
}
