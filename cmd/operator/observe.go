package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/operator-dev/operator/internal/stack"
	"github.com/operator-dev/operator/observers"
	rlobs "github.com/operator-dev/operator/observers/ratelimiter"
	"github.com/operator-dev/operator/ratelimiter"
)

func newObserveCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "observe",
		Short: "Observe a subject and publish its observations",
	}
	cmd.AddCommand(newObserveRatelimiterCmd(), newObserveTikvCmd())
	return cmd
}

func newObserveRatelimiterCmd() *cobra.Command {
	var (
		nf       natsFlags
		instance string
		nodes    []string
		redisURL string
		token    string
		interval time.Duration
		maxKeys  int

		metricsListen string
	)
	cmd := &cobra.Command{
		Use:   "ratelimiter",
		Short: "Observe rate limiter nodes and their Redis",
		Long: `Poll the rate limiter every --interval: each node's registry entry, status,
/metrics (p99s from histogram deltas) and hot keys; the counters of hot and
limited keys as each node computes them; limits and blocks; and Redis itself
(PING latency, keys under ratelimit: without a TTL). Nodes are discovered
from --nodes and from the node registry. A node or source that cannot be read
is listed in the observation's observer.errors; the rest is still published.`,
		Example: `  operator observe ratelimiter --instance prod --nodes http://10.0.0.1:8080,http://10.0.0.2:8080 --redis redis://10.0.0.9:6379/0`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log := slog.Default()
			rdb, err := ratelimiter.NewRedisClient(redisURL, time.Second)
			if err != nil {
				return err
			}
			defer func() { _ = rdb.Close() }()
			src, err := rlobs.New(rlobs.Config{Nodes: nodes, Token: token, MaxKeys: maxKeys, Redis: rdb})
			if err != nil {
				return err
			}
			log.Info("observing", "subject", "ratelimiter", "instance", instance, "nodes", strings.Join(nodes, ","), "interval", interval)
			return runObserve(cmd.Context(), &nf, metricsListen,
				observers.Config{Subject: "ratelimiter", Instance: instance, Interval: interval, Logger: log}, src)
		},
	}
	addNATSFlags(cmd, &nf)
	fs := cmd.Flags()
	fs.StringVar(&instance, "instance", "demo", "name of this rate limiter deployment (a NATS subject token)")
	fs.StringSliceVar(&nodes, "nodes", []string{"http://127.0.0.1:8080"}, "node base URLs (more are discovered from the registry)")
	fs.StringVar(&redisURL, "redis", "redis://127.0.0.1:6379/0", "the limiter's Redis, checked directly")
	fs.StringVar(&token, "token", "", "bearer token of the management API")
	fs.DurationVar(&interval, "interval", time.Second, "poll interval")
	fs.IntVar(&maxKeys, "max-keys", rlobs.DefaultMaxKeys, "hot keys examined per poll")
	fs.StringVar(&metricsListen, "metrics-listen", "", "serve Prometheus metrics and /healthz on this address (e.g. :9464; empty: off)")
	return cmd
}

// runObserve runs one observer on the bus the flags name until ctx is done,
// with its metrics on metricsListen.
func runObserve(ctx context.Context, nf *natsFlags, metricsListen string, cfg observers.Config, src observers.Source) error {
	reg := newRegistry()
	bc := nf.config(cfg.Logger)
	bc.Name = "operator-observe-" + cfg.Subject
	bc.Registerer = reg
	b, err := openDeclared(ctx, bc)
	if err != nil {
		return err
	}
	defer func() { _ = b.Close() }()
	cfg.Registerer = reg
	g, gctx := errgroup.WithContext(ctx)
	serveMetrics(gctx, g, metricsListen, reg)
	g.Go(func() error { return stack.RunObserver(gctx, b, cfg, src) })
	if err := g.Wait(); err != nil {
		return fmt.Errorf("observe %s: %w", cfg.Subject, err)
	}
	return nil
}
