// Package bustest starts a real embedded nats-server with JetStream for
// tests, one per test, on the test's temporary directory.
package bustest

import (
	"context"
	"testing"
	"time"

	"github.com/operator-dev/operator/internal/bus"
)

// New opens a bus on a fresh embedded server whose JetStream store lives in
// t.TempDir(), declares Operator's streams and buckets, and closes it when
// the test ends. Options adjust the config before it opens.
func New(t testing.TB, opts ...func(*bus.Config)) *bus.Bus {
	t.Helper()
	cfg := bus.Config{Embedded: bus.EmbeddedConfig{StoreDir: t.TempDir()}}
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := bus.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open embedded bus: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close bus: %v", err)
		}
	})
	if err := b.Declare(ctx); err != nil {
		t.Fatalf("declare: %v", err)
	}
	return b
}

// WithListener makes the embedded server listen on a free loopback port, for
// tests that connect a second client by URL (see Bus.ClientURL).
func WithListener(c *bus.Config) { c.Embedded.Listen = "127.0.0.1:0" }

// Context returns a context that ends with the test or after d.
func Context(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// Eventually polls cond every 10ms until it holds or d passes, then fails the
// test with msg.
func Eventually(t testing.TB, d time.Duration, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v: %s", d, msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
