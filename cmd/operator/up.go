package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/operator-dev/operator/internal/bus"
	"github.com/operator-dev/operator/internal/eventlog"
)

// upFlags configure `operator up`.
type upFlags struct {
	store      string
	natsListen string
	natsURL    string
	quiet      bool
	layout     natsFlags
}

func newUpCmd() *cobra.Command {
	var f upFlags
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the whole pipeline in one process on embedded defaults",
		Long: `Run the whole pipeline in one process: an embedded NATS JetStream server
(also listening for the nats CLI), the components, and a live log with one line
per event. Ctrl-C stops everything cleanly.`,
		Example: `  operator up
  operator up --store ./.operator --nats-listen 127.0.0.1:4222
  operator up --nats nats://nats.internal:4222`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runUp(cmd.Context(), cmd.OutOrStdout(), f)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.store, "store", "", "directory for the embedded JetStream store (default: a temporary directory removed on exit)")
	fs.StringVar(&f.natsListen, "nats-listen", "127.0.0.1:4222", "where the embedded NATS listens for the nats CLI and other processes ('' for in-process only)")
	fs.StringVar(&f.natsURL, "nats", "", "use this external NATS server instead of the embedded one")
	fs.BoolVar(&f.quiet, "quiet", false, "do not print the live event log")
	addBusLayoutFlags(cmd, &f.layout)
	return cmd
}

func runUp(ctx context.Context, out io.Writer, f upFlags) error {
	log := slog.Default()
	cfg := f.layout.config(log)
	cfg.Name = "operator-up"
	cfg.URL = f.natsURL
	if f.natsURL == "" {
		store := f.store
		if store != "" {
			abs, err := filepath.Abs(filepath.Join(store, "nats"))
			if err != nil {
				return err
			}
			store = abs
		}
		cfg.Embedded = bus.EmbeddedConfig{StoreDir: store, Listen: f.natsListen}
	}
	b, err := openDeclared(ctx, cfg)
	if err != nil {
		if strings.Contains(err.Error(), "ready") {
			return fmt.Errorf("%w (another operator up or nats-server may hold %s; pass --nats-listen 127.0.0.1:0 or another port)", err, f.natsListen)
		}
		return err
	}
	defer func() {
		if err := b.Close(); err != nil {
			log.Warn("closing nats", "error", err)
		}
	}()

	natsURL := b.ClientURL()
	if natsURL == "" {
		natsURL = "(in-process only)"
	}
	fmt.Fprintf(out, "operator up: NATS %s\n", natsURL)
	if b.ClientURL() != "" {
		fmt.Fprintf(out, "  watch every event: nats --server %s sub '%s'\n", b.ClientURL(), b.Subjects().All())
		fmt.Fprintf(out, "  or:                operator events tail --nats %s\n", b.ClientURL())
	}

	g, gctx := errgroup.WithContext(ctx)
	if !f.quiet {
		g.Go(func() error { return liveLog(gctx, b, out) })
	}
	err = g.Wait()
	if ctx.Err() != nil {
		fmt.Fprintln(out, "operator up: stopped")
		return nil
	}
	return err
}

// liveLog prints one line per stored event, observations excepted (one per
// observer poll would drown the rest).
func liveLog(ctx context.Context, b *bus.Bus, out io.Writer) error {
	obs, err := b.Subjects().Observations("")
	if err != nil {
		return err
	}
	obsPrefix := strings.TrimSuffix(obs, ">")
	return b.Tail(ctx, "", time.Time{}, func(subject string, e event.Event, err error) {
		if err != nil {
			fmt.Fprintf(out, "undecodable message on %s: %v\n", subject, err)
			return
		}
		if strings.HasPrefix(subject, obsPrefix) {
			return
		}
		fmt.Fprintln(out, eventlog.Line(e))
	})
}
