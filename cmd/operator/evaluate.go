package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/operator-dev/operator/evaluators"
	"github.com/operator-dev/operator/pipeline"
)

// evaluateFlags configure `operator evaluate`.
type evaluateFlags struct {
	nats          natsFlags
	rules         []string
	workers       int
	staleAfter    time.Duration
	workerID      string
	metricsListen string
}

func newEvaluateCmd() *cobra.Command {
	var f evaluateFlags
	cmd := &cobra.Command{
		Use:   "evaluate --rules FILE...",
		Short: "Judge observations against rule sets; publish violations and action requests",
		Long: `Run the evaluator: a durable consumer on OPERATOR_OBSERVATIONS, filtered to the
subjects the rule files name, that evaluates every observation, keeps alert
state in the operator_evaluator_state bucket and publishes violations and
action requests. Several evaluators may share the consumer.`,
		Example: `  operator evaluate --rules subjects/ratelimiter/rules.yaml
  operator evaluate --nats nats://nats:4222 --rules a.yaml --rules b.yaml --workers 4`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runEvaluate(cmd.Context(), f)
		},
	}
	fs := cmd.Flags()
	addNATSFlags(cmd, &f.nats)
	fs.StringArrayVar(&f.rules, "rules", nil, "rule file (repeat for several)")
	fs.IntVar(&f.workers, "workers", 1, "observations evaluated concurrently")
	fs.DurationVar(&f.staleAfter, "stale-after", 0, "silence after which observer_stale fires, for rule files without stale_after (default: 3 observer intervals, or 30s)")
	fs.StringVar(&f.workerID, "worker-id", defaultWorkerID(), "this evaluator's name in event sources")
	fs.StringVar(&f.metricsListen, "metrics-listen", "", "serve Prometheus metrics on this address (e.g. :9464; empty: off)")
	_ = cmd.MarkFlagRequired("rules")
	return cmd
}

func defaultWorkerID() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return evaluators.DefaultWorkerID
	}
	return strings.NewReplacer(" ", "-", "/", "-").Replace(h)
}

func runEvaluate(ctx context.Context, f evaluateFlags) error {
	log := slog.Default()
	sets, err := evaluators.LoadRuleSets(evaluators.LoadOptions{}, f.rules...)
	if err != nil {
		return err
	}
	reg := newRegistry()
	cfg := evaluators.Config{
		WorkerID:      f.workerID,
		SubjectPrefix: f.nats.prefix,
		StaleAfter:    f.staleAfter,
		Logger:        log,
		Registerer:    reg,
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if f.workers < 1 {
		return fmt.Errorf("--workers %d: must be at least 1", f.workers)
	}
	busCfg := f.nats.config(log)
	busCfg.Name = "operator-evaluate"
	busCfg.Registerer = reg
	b, err := pipeline.OpenBus(ctx, busCfg)
	if err != nil {
		return err
	}
	defer func() {
		if err := b.Close(); err != nil {
			log.Warn("closing nats", "error", err)
		}
	}()

	g, gctx := errgroup.WithContext(ctx)
	serveMetrics(gctx, g, f.metricsListen, reg)
	g.Go(func() error { return pipeline.RunEvaluator(gctx, b, sets, cfg, f.workers) })
	return g.Wait()
}
