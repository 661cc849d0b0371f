package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/operator-dev/operator/internal/bus"
	"github.com/operator-dev/operator/pipeline"
	"github.com/operator-dev/operator/schemas"
)

// defaultNATSURL is where `operator up` and `operator nats serve` listen.
const defaultNATSURL = "nats://127.0.0.1:4222"

// natsFlags are the flags every command that talks to NATS shares.
type natsFlags struct {
	url      string
	creds    string
	nkey     string
	tlsCA    string
	tlsCert  string
	tlsKey   string
	prefix   string
	replicas int
}

// addNATSFlags registers the connection flags on cmd.
func addNATSFlags(cmd *cobra.Command, f *natsFlags) {
	fs := cmd.Flags()
	fs.StringVar(&f.url, "nats", defaultNATSURL, "NATS server URL (comma-separated for a cluster)")
	fs.StringVar(&f.creds, "nats-creds", "", "NATS user credentials file")
	fs.StringVar(&f.nkey, "nats-nkey", "", "NATS nkey seed file")
	fs.StringVar(&f.tlsCA, "nats-tls-ca", "", "CA bundle to verify the NATS server")
	fs.StringVar(&f.tlsCert, "nats-tls-cert", "", "client certificate for NATS")
	fs.StringVar(&f.tlsKey, "nats-tls-key", "", "client key for NATS")
	addBusLayoutFlags(cmd, f)
}

// addBusLayoutFlags registers the flags that shape what Operator declares.
func addBusLayoutFlags(cmd *cobra.Command, f *natsFlags) {
	fs := cmd.Flags()
	fs.StringVar(&f.prefix, "subject-prefix", "operator", "first token of every Operator subject")
	fs.IntVar(&f.replicas, "replicas", 1, "replicas of the streams and buckets Operator declares (3 on a NATS cluster)")
}

func (f *natsFlags) config(log *slog.Logger) bus.Config {
	return bus.Config{
		URL: f.url, CredsFile: f.creds, NKeyFile: f.nkey,
		TLSCAFile: f.tlsCA, TLSCertFile: f.tlsCert, TLSKeyFile: f.tlsKey,
		Prefix: f.prefix, Replicas: f.replicas, Logger: log,
	}
}

// openBus connects with the flags and declares Operator's streams and
// buckets, so every command works against a fresh server.
func (f *natsFlags) openBus(ctx context.Context, log *slog.Logger, name string) (*bus.Bus, error) {
	cfg := f.config(log)
	cfg.Name = name
	return pipeline.OpenBus(ctx, cfg)
}

// openControl opens the bus and the operator_control bucket, for the
// commands that change or read the actuators' controls.
func (f *natsFlags) openControl(ctx context.Context, name string) (*bus.Bus, *bus.KV, error) {
	b, err := f.openBus(ctx, slog.Default(), name)
	if err != nil {
		return nil, nil, err
	}
	control, err := b.KV(ctx, schemas.BucketControl)
	if err != nil {
		_ = b.Close()
		return nil, nil, err
	}
	return b, control, nil
}

// sinceTime turns a --since duration into a start time; 0 means from the
// beginning (the zero time).
func sinceTime(since time.Duration) time.Time {
	if since <= 0 {
		return time.Time{}
	}
	return time.Now().Add(-since)
}
