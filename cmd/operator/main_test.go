package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/operator-dev/operator/internal/bus"
	"github.com/operator-dev/operator/internal/bus/bustest"
)

// run executes the command tree with args and returns what it printed.
func run(t *testing.T, ctx context.Context, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

func TestHelpListsEveryCommandWithADescription(t *testing.T) {
	out, err := run(t, context.Background(), "--help")
	if err != nil {
		t.Fatal(err)
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" || sub.Name() == "completion" {
				continue
			}
			if strings.TrimSpace(sub.Short) == "" {
				t.Errorf("%s has no one-line description", sub.CommandPath())
			}
			if c == sub.Root() && !strings.Contains(out, "  "+sub.Name()+" ") {
				t.Errorf("operator --help does not list %s", sub.Name())
			}
			walk(sub)
		}
	}
	walk(newRootCmd())
}

func TestVersion(t *testing.T) {
	out, err := run(t, context.Background(), "version")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "operator ") || len(strings.TrimSpace(out)) <= len("operator ") {
		t.Fatalf("version printed %q", out)
	}
}

func TestFlagsFromEnvironment(t *testing.T) {
	t.Setenv("OPERATOR_NATS", "nats://127.0.0.1:1")
	_, err := run(t, bustest.Context(t, 20*time.Second), "record", "--stream", "OPERATOR_VIOLATIONS")
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("err = %v, want a connection error naming the URL from OPERATOR_NATS", err)
	}
	t.Setenv("OPERATOR_REPLICAS", "many")
	if _, err := run(t, context.Background(), "record", "--stream", "X"); err == nil || !strings.Contains(err.Error(), "OPERATOR_REPLICAS") {
		t.Fatalf("err = %v, want a refusal naming OPERATOR_REPLICAS", err)
	}
}

func TestPublishThenRecord(t *testing.T) {
	b := bustest.New(t, bustest.WithListener)
	ctx := bustest.Context(t, 30*time.Second)
	url := b.ClientURL()
	in := filepath.Join("testdata", "violation.jsonl")
	out, err := run(t, ctx, "publish", in, "--nats", url)
	if err != nil || !strings.Contains(out, "published 1 messages") {
		t.Fatalf("publish: %q, %v", out, err)
	}
	out, err = run(t, ctx, "publish", in, "--nats", url)
	if err != nil || !strings.Contains(out, "1 already stored") {
		t.Fatalf("second publish: %q, %v", out, err)
	}
	file := filepath.Join(t.TempDir(), "out.jsonl")
	if _, err := run(t, ctx, "record", "--stream", "OPERATOR_VIOLATIONS", "--out", file, "--nats", url); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(in)
	got, _ := os.ReadFile(file)
	r1, err := bus.NewRecordReader(bytes.NewReader(want)).Next()
	if err != nil {
		t.Fatal(err)
	}
	r2, err := bus.NewRecordReader(bytes.NewReader(got)).Next()
	if err != nil {
		t.Fatal(err)
	}
	if r1.Subject != r2.Subject || !bytes.Equal(r1.Body(), r2.Body()) {
		t.Fatalf("recorded %+v, published %+v", r2, r1)
	}
	if _, ok := r2.Headers["Nats-Stream"]; ok {
		t.Error("server-set Nats-Stream header from the input was published back")
	}
	if r2.Headers["ce-type"][0] != "io.operator.violation.v1" || r2.Headers["Nats-Msg-Id"][0] != "v1" {
		t.Errorf("headers not kept: %v", r2.Headers)
	}
}

func TestUpStartsAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	store := t.TempDir()
	go func() {
		root := newRootCmd()
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs([]string{"up", "--store", store, "--nats-listen", "127.0.0.1:0", "--node-listen", "127.0.0.1:0",
			"--nodes", "2", "--metrics-listen", ""})
		done <- root.ExecuteContext(ctx)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "nats --server nats://127.0.0.1:") {
		if time.Now().After(deadline) {
			t.Fatalf("up did not print its NATS URL:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("up: %v", err)
	}
	for _, want := range []string{"watching ratelimiter/demo", "node n1", "node n2", "stopped"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("up did not print %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "node n3") {
		t.Errorf("up ran more nodes than --nodes 2:\n%s", out.String())
	}
}
