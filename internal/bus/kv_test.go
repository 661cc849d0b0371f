package bus_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/operator-dev/operator/internal/bus"
	"github.com/operator-dev/operator/internal/bus/bustest"
	"github.com/operator-dev/operator/schemas"
)

func TestKVCompareAndSwap(t *testing.T) {
	b := bustest.New(t)
	ctx := bustest.Context(t, 10*time.Second)
	kv, err := b.KV(ctx, schemas.BucketEvaluatorState)
	if err != nil {
		t.Fatal(err)
	}
	key := "ratelimiter/demo/hot_key/user:42 *.>"
	if _, _, err := kv.Get(ctx, key); !errors.Is(err, bus.ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
	r1, err := kv.CompareAndSwap(ctx, key, []byte("a"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.CompareAndSwap(ctx, key, []byte("b"), 0); !errors.Is(err, bus.ErrConflict) {
		t.Fatalf("create over existing: %v, want ErrConflict", err)
	}
	r2, err := kv.CompareAndSwap(ctx, key, []byte("b"), r1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.CompareAndSwap(ctx, key, []byte("stale"), r1); !errors.Is(err, bus.ErrConflict) {
		t.Fatalf("update at stale revision: %v, want ErrConflict", err)
	}
	v, rev, err := kv.Get(ctx, key)
	if err != nil || string(v) != "b" || rev != r2 {
		t.Fatalf("get = %q@%d, %v; want b@%d", v, rev, err, r2)
	}
	if _, err := kv.Put(ctx, "plain", []byte("x")); err != nil {
		t.Fatal(err)
	}
	keys, err := kv.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"plain", key}) {
		t.Fatalf("keys = %q", keys)
	}
	if err := kv.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, _, err := kv.Get(ctx, key); !errors.Is(err, bus.ErrNotFound) {
		t.Fatalf("get deleted: %v", err)
	}
	// A deleted key can be created again with revision 0.
	if _, err := kv.CompareAndSwap(ctx, key, []byte("c"), 0); err != nil {
		t.Fatalf("recreate deleted: %v", err)
	}
	if _, err := kv.CompareAndSwap(ctx, "", []byte("c"), 0); err == nil {
		t.Fatal("empty key accepted")
	}
}
