package bus_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/operator-dev/operator/internal/bus"
	"github.com/operator-dev/operator/internal/bus/bustest"
	"github.com/operator-dev/operator/schemas"
)

func TestReadStream(t *testing.T) {
	b := bustest.New(t)
	ctx := bustest.Context(t, 20*time.Second)
	other := "operator.violation.ratelimiter.prod.node_down"
	// Sequences 1..6: e0 e2 e4 on violSubject, e1 e3 e5 on other.
	for i, subj := range []string{violSubject, other, violSubject, other, violSubject, other} {
		if err := b.Publish(ctx, subj, testEvent(t, "e"+string(rune('0'+i)), "s")); err != nil {
			t.Fatal(err)
		}
	}
	first, last, err := b.StreamPosition(ctx, schemas.StreamViolations)
	if err != nil || first != 1 || last != 6 {
		t.Fatalf("position %d..%d, %v; want 1..6", first, last, err)
	}
	tests := []struct {
		name string
		read bus.StreamRead
		want string
	}{
		{"everything through the last", bus.StreamRead{Through: 6}, "1:e0 2:e1 3:e2 4:e3 5:e4 6:e5"},
		{"after a sequence", bus.StreamRead{After: 3, Through: 6}, "4:e3 5:e4 6:e5"},
		{"through a sequence before the last", bus.StreamRead{After: 1, Through: 3}, "2:e1 3:e2"},
		{"after the last: nothing", bus.StreamRead{After: 6, Through: 6}, ""},
		{"filtered, ending at its own last message", bus.StreamRead{Filter: violSubject, Through: 6}, "1:e0 3:e2 5:e4"},
		{"filtered after a sequence", bus.StreamRead{Filter: other, After: 2, Through: 6}, "4:e3 6:e5"},
		{"filtered, nothing matches", bus.StreamRead{Filter: "operator.violation.tikv.>", Through: 6}, ""},
		{"last per subject", bus.StreamRead{LastPerSubject: true, Through: 6}, "5:e4 6:e5"},
		{"last per subject after a sequence skips what was seen", bus.StreamRead{LastPerSubject: true, After: 5, Through: 6}, "6:e5"},
		{"since a time after everything", bus.StreamRead{Since: time.Now().Add(time.Hour), Through: 6}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.read
			r.Stream = schemas.StreamViolations
			var got []string
			err := b.ReadStream(ctx, r, func(s bus.StoredEvent) error {
				if s.Err != nil {
					t.Errorf("decode: %v", s.Err)
				}
				got = append(got, strconv.FormatUint(s.Sequence, 10)+":"+s.Event.ID())
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if g := strings.Join(got, " "); g != tt.want {
				t.Errorf("got %q, want %q", g, tt.want)
			}
		})
	}

	t.Run("an error from fn stops the read", func(t *testing.T) {
		stop := errors.New("enough")
		n := 0
		err := b.ReadStream(ctx, bus.StreamRead{Stream: schemas.StreamViolations, Through: 6}, func(bus.StoredEvent) error {
			n++
			return stop
		})
		if !errors.Is(err, stop) || n != 1 {
			t.Errorf("got %v after %d messages", err, n)
		}
	})

	t.Run("following delivers what is stored later, then stops with ctx", func(t *testing.T) {
		fctx, cancel := context.WithCancel(ctx)
		var (
			mu  sync.Mutex
			got []string
		)
		done := make(chan error, 1)
		go func() {
			done <- b.ReadStream(fctx, bus.StreamRead{Stream: schemas.StreamViolations, After: 5}, func(s bus.StoredEvent) error {
				mu.Lock()
				got = append(got, strconv.FormatUint(s.Sequence, 10)+":"+s.Event.ID())
				mu.Unlock()
				return nil
			})
		}()
		if err := b.Publish(ctx, violSubject, testEvent(t, "e6", "s")); err != nil {
			t.Fatal(err)
		}
		bustest.Eventually(t, 10*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(got) == 2
		}, "the follow did not deliver 6 and 7")
		cancel()
		if err := <-done; err != nil {
			t.Errorf("a follow stopped by its ctx returned %v", err)
		}
		if g := strings.Join(got, " "); g != "6:e5 7:e6" {
			t.Errorf("got %q", g)
		}
	})
}

func TestReadBucket(t *testing.T) {
	b := bustest.New(t)
	ctx := bustest.Context(t, 20*time.Second)
	kv, err := b.KV(ctx, schemas.BucketControl)
	if err != nil {
		t.Fatal(err)
	}
	put := func(k, v string) {
		t.Helper()
		if _, err := kv.Put(ctx, k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	put("a/1", "x")                               // rev 1, overwritten by rev 3
	put("b.2", "y")                               // rev 2, deleted at rev 4
	put("a/1", "x2")                              // rev 3
	if err := kv.Delete(ctx, "b.2"); err != nil { // rev 4
		t.Fatal(err)
	}
	put("c", "z") // rev 5
	_, last, err := b.BucketPosition(ctx, schemas.BucketControl)
	if err != nil || last != 5 {
		t.Fatalf("last revision %d, %v; want 5", last, err)
	}
	read := func(after, through uint64) string {
		t.Helper()
		var got []string
		err := b.ReadBucket(ctx, bus.BucketRead{Bucket: schemas.BucketControl, After: after, Through: through}, func(c bus.KVChange) error {
			s := strconv.FormatUint(c.Revision, 10) + ":" + c.Key + "="
			if c.Deleted {
				s += "deleted"
			} else {
				s += string(c.Value)
			}
			got = append(got, s)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(got, " ")
	}
	tests := []struct {
		name           string
		after, through uint64
		want           string
	}{
		{"every key at its latest revision, deletions included", 0, 5, "3:a/1=x2 4:b.2=deleted 5:c=z"},
		{"what changed after a revision", 3, 5, "4:b.2=deleted 5:c=z"},
		{"nothing after the last", 5, 5, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := read(tt.after, tt.through); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
