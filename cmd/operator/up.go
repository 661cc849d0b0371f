package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/operator-dev/operator/actuators"
	"github.com/operator-dev/operator/internal/bus"
	"github.com/operator-dev/operator/internal/eventlog"
	"github.com/operator-dev/operator/internal/stack"
	"github.com/operator-dev/operator/ratelimiter"
	"github.com/operator-dev/operator/schemas"
)

// upFlags configure `operator up`.
type upFlags struct {
	store      string
	natsListen string
	natsURL    string
	redisURL   string
	nodes      int
	nodeListen string
	instance   string
	interval   time.Duration
	token      string
	clock      string
	rules      []string
	pd         []string
	prometheus string
	mode       string
	metrics    string
	quiet      bool
	layout     natsFlags
	// log receives the components' logs (default: slog.Default()).
	log *slog.Logger
}

func newUpCmd() *cobra.Command {
	var f upFlags
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the whole pipeline in one process on embedded defaults",
		Long: `Run the whole pipeline in one process: an embedded NATS JetStream server (also
listening for the nats CLI), an embedded Redis-compatible store (or --redis),
rate limiter nodes, the rate limiter observer and the evaluator, and a live
log with one line per event. Ctrl-C stops everything cleanly.`,
		Example: `  operator up
  operator up --store ./.operator --nodes 5
  operator up --redis redis://127.0.0.1:6379/0 --nats nats://127.0.0.1:4222
  operator up --pd http://pd0:2379,http://pd1:2379 --prometheus http://prometheus:9090`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("log-level") {
				// The live event log is the output; components speak up
				// only when something is wrong.
				f.log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			}
			return runUp(cmd.Context(), cmd.OutOrStdout(), f)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.store, "store", "", "directory for the embedded JetStream store (default: a temporary directory removed on exit)")
	fs.StringVar(&f.natsListen, "nats-listen", "127.0.0.1:4222", "where the embedded NATS listens for the nats CLI and other processes ('' for in-process only)")
	fs.StringVar(&f.natsURL, "nats", "", "use this external NATS server instead of the embedded one")
	fs.StringVar(&f.redisURL, "redis", "", "use this Redis instead of the embedded store (redis://host:port/db)")
	fs.IntVar(&f.nodes, "nodes", stack.DefaultNodes, "rate limiter nodes to run")
	fs.StringVar(&f.nodeListen, "node-listen", "127.0.0.1:8081", "address of the first node; the others take the next ports (port 0: any free port)")
	fs.StringVar(&f.instance, "instance", stack.DefaultInstance, "name of the rate limiter deployment in subjects")
	fs.DurationVar(&f.interval, "interval", stack.DefaultInterval, "observer poll interval")
	fs.StringVar(&f.token, "token", "", "bearer token for the nodes' management API")
	fs.StringVar(&f.clock, "clock", string(ratelimiter.DefaultClock), "the nodes' decision clock: redis (TIME) or node (each node's own, so a chaos clock skew changes decisions)")
	fs.StringSliceVar(&f.rules, "rules", nil, "rule files to use instead of the shipped rate limiter rules")
	fs.StringSliceVar(&f.pd, "pd", nil, "also observe and repair a TiKV cluster through these PD URLs (see docs/tikv.md)")
	fs.StringVar(&f.prometheus, "prometheus", "", "the Prometheus that scrapes the TiKV stores (with --pd)")
	fs.StringVar(&f.mode, "mode", schemas.ModeExecute, "the actuator's mode: execute (act; up owns its sandbox) or observe (record what it would do)")
	fs.StringVar(&f.metrics, "metrics-listen", "127.0.0.1:9464", "serve the pipeline's Prometheus metrics here ('' for none; the nodes serve their own)")
	fs.BoolVar(&f.quiet, "quiet", false, "do not print the live event log")
	addBusLayoutFlags(cmd, &f.layout)
	return cmd
}

func runUp(ctx context.Context, out io.Writer, f upFlags) error {
	log := f.log
	if log == nil {
		log = slog.Default()
	}
	cfg := stack.Config{
		Store: f.store, NATSListen: f.natsListen, NATSURL: f.natsURL,
		Bus:      bus.Config{Prefix: f.layout.prefix, Replicas: f.layout.replicas},
		RedisURL: f.redisURL, Nodes: f.nodes, NodeListen: f.nodeListen,
		Limiter: ratelimiter.Config{EnableChaos: true, Version: buildVersion(), Clock: ratelimiter.ClockSource(f.clock)},
		Token:   f.token, Instance: f.instance, Interval: f.interval, RuleFiles: f.rules,
		PDURLs: f.pd, PrometheusURL: f.prometheus,
		Actuator: actuators.Config{Mode: f.mode},
		Logger:   log,
	}
	reg := newRegistry()
	if f.metrics != "" {
		cfg.Registerer = reg
	}
	s, err := stack.Start(ctx, cfg)
	if err != nil {
		if strings.Contains(err.Error(), "ready") || strings.Contains(err.Error(), "address already in use") {
			return fmt.Errorf("%w (another operator up may be running; pass --nats-listen and --node-listen with free ports, or port 0)", err)
		}
		return err
	}
	defer func() {
		if err := s.Close(); err != nil {
			log.Warn("shutting down", "error", err)
		}
	}()
	printEndpoints(out, s, f.metrics)

	g, gctx := errgroup.WithContext(ctx)
	serveMetrics(gctx, g, f.metrics, reg)
	g.Go(func() error { return s.Run(gctx) })
	if !f.quiet {
		g.Go(func() error { return liveLog(gctx, s.Bus, out) })
	}
	err = g.Wait()
	if ctx.Err() != nil {
		fmt.Fprintln(out, "operator up: stopped")
		return nil
	}
	return err
}

func printEndpoints(out io.Writer, s *stack.Stack, metricsAddr string) {
	natsURL := s.Bus.ClientURL()
	if natsURL == "" {
		natsURL = "(in-process only)"
	}
	fmt.Fprintf(out, "operator up: instance %q\n", s.Instance())
	fmt.Fprintf(out, "  NATS   %s\n", natsURL)
	fmt.Fprintf(out, "  Redis  %s\n", s.RedisURL)
	for _, n := range s.Nodes() {
		fmt.Fprintf(out, "  node %s  %s   (try: curl -XPOST %s/v1/check -d '{\"key\":\"user:1\"}')\n", n.ID, n.URL, n.URL)
	}
	if u := s.Bus.ClientURL(); u != "" {
		fmt.Fprintf(out, "  watch every event: nats --server %s sub '%s'\n", u, s.Bus.Subjects().All())
		fmt.Fprintf(out, "  or:                operator events tail --nats %s\n", u)
	}
	if metricsAddr != "" {
		fmt.Fprintf(out, "  pipeline metrics:  http://%s/metrics\n", metricsAddr)
	}
	fmt.Fprintln(out, "live events (observations hidden):")
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
