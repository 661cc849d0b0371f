package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/operator-dev/operator/internal/bus"
	"github.com/operator-dev/operator/pipeline"
)

func newNATSCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "nats",
		Short: "Run a local JetStream server with Operator's streams and buckets",
	}
	cmd.AddCommand(newNATSServeCmd())
	return cmd
}

func newNATSServeCmd() *cobra.Command {
	var (
		store, listen string
		layout        natsFlags
		serverLogs    bool
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve JetStream on a local directory for the other commands and the nats CLI",
		Example: `  operator nats serve --store ./.operator/nats --listen 127.0.0.1:4222
  nats --server nats://127.0.0.1:4222 stream ls`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := filepath.Abs(store)
			if err != nil {
				return err
			}
			cfg := layout.config(slog.Default())
			cfg.URL = ""
			cfg.Name = "operator-nats-serve"
			cfg.Embedded = bus.EmbeddedConfig{StoreDir: dir, Listen: listen, ServerLogs: serverLogs}
			b, err := pipeline.OpenBus(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "JetStream serving %s on %s\n", dir, b.ClientURL())
			fmt.Fprintf(cmd.OutOrStdout(), "watch events with: nats --server %s sub '%s'\n", b.ClientURL(), b.Subjects().All())
			<-cmd.Context().Done()
			fmt.Fprintln(cmd.OutOrStdout(), "shutting down")
			return b.Close()
		},
	}
	cmd.Flags().StringVar(&store, "store", filepath.Join(".operator", "nats"), "JetStream store directory")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:4222", "client listen address")
	cmd.Flags().BoolVar(&serverLogs, "server-logs", false, "print nats-server's own log lines")
	addBusLayoutFlags(cmd, &layout)
	return cmd
}

func newRecordCmd() *cobra.Command {
	var (
		nf     natsFlags
		stream string
		since  time.Duration
		out    string
	)
	cmd := &cobra.Command{
		Use:   "record",
		Short: "Write a slice of a stream to a JSON-lines recording",
		Example: `  operator record --stream OPERATOR_OBSERVATIONS --since 10m --out obs.jsonl
  operator record --stream OPERATOR_VIOLATIONS --out -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := nf.openBus(cmd.Context(), slog.Default(), "operator-record")
			if err != nil {
				return err
			}
			defer b.Close()
			w := cmd.OutOrStdout()
			if out != "-" {
				f, err := os.Create(out)
				if err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			from := sinceTime(since)
			rw := bus.NewRecordWriter(w)
			n, err := b.Record(cmd.Context(), stream, from, rw)
			if ferr := rw.Flush(); err == nil {
				err = ferr
			}
			if err != nil {
				return err
			}
			if out != "-" {
				fmt.Fprintf(cmd.ErrOrStderr(), "recorded %d messages of %s to %s\n", n, stream, out)
			}
			return nil
		},
	}
	addNATSFlags(cmd, &nf)
	cmd.Flags().StringVar(&stream, "stream", "", "stream to record, e.g. OPERATOR_OBSERVATIONS")
	cmd.Flags().DurationVar(&since, "since", 0, "only messages stored within this long ago (default: all)")
	cmd.Flags().StringVar(&out, "out", "-", "output file (- for stdout)")
	_ = cmd.MarkFlagRequired("stream")
	return cmd
}

func newPublishCmd() *cobra.Command {
	var nf natsFlags
	cmd := &cobra.Command{
		Use:   "publish FILE",
		Short: "Publish a JSON-lines recording back to its subjects",
		Long: `Publish a recording made by 'operator record'. Headers and bodies are kept;
server-set Nats-* headers are dropped except Nats-Msg-Id, so publishing the same
recording twice within a stream's dedup window stores nothing twice.`,
		Example: `  operator publish tests/testdata/recordings/ratelimiter-node_kill.jsonl`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			b, err := nf.openBus(cmd.Context(), slog.Default(), "operator-publish")
			if err != nil {
				return err
			}
			defer b.Close()
			n, dups, err := b.Replay(cmd.Context(), bus.NewRecordReader(f))
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "published %d messages from %s (%d already stored: dropped as duplicates)\n", n, args[0], dups)
			return nil
		},
	}
	addNATSFlags(cmd, &nf)
	return cmd
}
