package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/operator-dev/operator/observers"
	"github.com/operator-dev/operator/pipeline"
	"github.com/operator-dev/operator/subjects"
)

func newObserveCmd(reg subjects.Registry) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "observe",
		Short: "Observe a subject and publish its observations",
	}
	for _, s := range reg {
		cmd.AddCommand(newObserveSubjectCmd(s))
	}
	return cmd
}

// newObserveSubjectCmd is `operator observe NAME`: the common flags (NATS,
// instance, interval, metrics) and the subject's own.
func newObserveSubjectCmd(s subjects.Subject) *cobra.Command {
	var (
		nf            natsFlags
		instance      string
		interval      time.Duration
		metricsListen string
		newSource     subjects.NewSource
	)
	o := s.Observer
	cmd := &cobra.Command{
		Use:     s.Name,
		Short:   o.Short,
		Long:    o.Long,
		Example: o.Example,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log := slog.Default()
			src, closeSrc, err := newSource(cmd.Context(), log.With("instance", instance, "interval", interval))
			if err != nil {
				return err
			}
			if closeSrc != nil {
				defer func() { _ = closeSrc() }()
			}
			return runObserve(cmd.Context(), &nf, metricsListen,
				observers.Config{Subject: s.Name, Instance: instance, Interval: interval, Logger: log}, src)
		},
	}
	addNATSFlags(cmd, &nf)
	fs := cmd.Flags()
	fs.StringVar(&instance, "instance", o.DefaultInstance, "name of this "+orDefault(s.Title, s.Name)+" (a NATS subject token)")
	fs.DurationVar(&interval, "interval", o.DefaultInterval, "poll interval")
	fs.StringVar(&metricsListen, "metrics-listen", "", "serve Prometheus metrics and /healthz on this address (e.g. :9464; empty: off)")
	newSource = o.Flags(fs)
	if o.DefaultInstance == "" {
		_ = cmd.MarkFlagRequired("instance")
	}
	for _, f := range o.Required {
		_ = cmd.MarkFlagRequired(f)
	}
	return cmd
}

// runObserve runs one observer on the bus the flags name until ctx is done,
// with its metrics on metricsListen.
func runObserve(ctx context.Context, nf *natsFlags, metricsListen string, cfg observers.Config, src observers.Source) error {
	reg := newRegistry()
	bc := nf.config(cfg.Logger)
	bc.Name = "operator-observe-" + cfg.Subject
	bc.Registerer = reg
	b, err := pipeline.OpenBus(ctx, bc)
	if err != nil {
		return err
	}
	defer func() { _ = b.Close() }()
	cfg.Registerer = reg
	g, gctx := errgroup.WithContext(ctx)
	serveMetrics(gctx, g, metricsListen, reg)
	g.Go(func() error { return pipeline.RunObserver(gctx, b, cfg, src) })
	if err := g.Wait(); err != nil {
		return fmt.Errorf("observe %s: %w", cfg.Subject, err)
	}
	return nil
}
