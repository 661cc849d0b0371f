package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/operator-dev/operator/actuators"
	"github.com/operator-dev/operator/pipeline"
	"github.com/operator-dev/operator/schemas"
	"github.com/operator-dev/operator/subjects"
)

// actuateFlags configure `operator actuate`.
type actuateFlags struct {
	nats           natsFlags
	subjects       subjectFlags
	mode           string
	workerID       string
	maxActions     int
	per            time.Duration
	approvalTTL    time.Duration
	executeTimeout time.Duration
	maxAttempts    int
	concurrency    int
	metricsListen  string
}

// subjectFlags select the subjects an actuator acts on and reach their
// APIs: each subject registers its own endpoint flags.
type subjectFlags struct {
	reg   subjects.Registry
	names []string
	execs map[string]subjects.NewExecutor
}

func addSubjectFlags(cmd *cobra.Command, reg subjects.Registry, f *subjectFlags) {
	fs := cmd.Flags()
	f.reg = reg
	f.execs = map[string]subjects.NewExecutor{}
	fs.StringSliceVar(&f.names, "subjects", reg.Names()[:1], "subjects to act on (comma-separated): "+strings.Join(reg.Names(), ", "))
	for _, s := range reg {
		if s.Executor.Flags != nil {
			f.execs[s.Name] = s.Executor.Flags(fs)
		}
	}
}

func newActuateCmd(reg subjects.Registry) *cobra.Command {
	var f actuateFlags
	cmd := &cobra.Command{
		Use:   "actuate",
		Short: "Run action requests through the safety gates and execute them against the subjects' APIs",
		Long: `Run the actuator: a durable consumer per subject on OPERATOR_ACTIONS that takes
every action request through the gates, in order: catalog and params, kill
switch (operator control stop), mode, precondition (the violation still
fires; no empty or wildcard target), per-target cooldown and per-subject
budget (shared by every replica), approval (operator approve/reject), the
idempotency ledger (a request runs at most once) — then executes it with a
timeout and retries for transient errors, publishes action.completed, and
verifies succeeded actions against the next observations (action.verified).

The default mode is observe: requests are recorded as "skipped: observe mode:
would run ...". Pass --mode execute to act.`,
		Example: `  operator actuate --ratelimiter-url http://127.0.0.1:8081,http://127.0.0.1:8082
  operator actuate --mode execute --ratelimiter-url http://rl:8080 --ratelimiter-token "$TOKEN" --max-actions 5 --per 10m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runActuate(cmd.Context(), f)
		},
	}
	fs := cmd.Flags()
	addNATSFlags(cmd, &f.nats)
	addSubjectFlags(cmd, reg, &f.subjects)
	fs.StringVar(&f.mode, "mode", actuators.DefaultMode, "observe (record what would be done) or execute")
	fs.StringVar(&f.workerID, "worker-id", defaultWorkerID(), "this actuator's name in event sources and ledger claims")
	fs.IntVar(&f.maxActions, "max-actions", actuators.DefaultMaxActions, "most actions per subject within --per, across all replicas (failed verifications count)")
	fs.DurationVar(&f.per, "per", actuators.DefaultPer, "window of --max-actions")
	fs.DurationVar(&f.approvalTTL, "approval-ttl", actuators.DefaultApprovalTTL, "how long a request waits for approval, and an approval stays good")
	fs.DurationVar(&f.executeTimeout, "execute-timeout", actuators.DefaultExecuteTimeout, "timeout of one attempt of an action without its own")
	fs.IntVar(&f.maxAttempts, "max-attempts", actuators.DefaultMaxAttempts, "attempts at an action failing transiently (5xx, timeouts)")
	fs.IntVar(&f.concurrency, "concurrency", actuators.DefaultConcurrency, "requests per subject handled at once")
	fs.StringVar(&f.metricsListen, "metrics-listen", "", "serve Prometheus metrics on this address (e.g. :9465; empty: off)")
	return cmd
}

func runActuate(ctx context.Context, f actuateFlags) error {
	log := slog.Default()
	reg := newRegistry()
	cfg := actuators.Config{
		WorkerID:       f.workerID,
		SubjectPrefix:  f.nats.prefix,
		Mode:           f.mode,
		MaxActions:     f.maxActions,
		Per:            f.per,
		ApprovalTTL:    f.approvalTTL,
		ExecuteTimeout: f.executeTimeout,
		MaxAttempts:    f.maxAttempts,
		Concurrency:    f.concurrency,
		Logger:         log,
		Registerer:     reg,
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if f.maxActions < 1 {
		return fmt.Errorf("--max-actions %d: must be at least 1", f.maxActions)
	}
	subs, err := actuatorSubjects(f.subjects, f.mode == schemas.ModeExecute)
	if err != nil {
		return err
	}
	busCfg := f.nats.config(log)
	busCfg.Name = "operator-actuate"
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
	deps, err := pipeline.ActuatorDeps(ctx, b, subs)
	if err != nil {
		return err
	}
	w, err := actuators.New(cfg, deps)
	if err != nil {
		return err
	}
	log.Info("actuating", "subjects", f.subjects.names, "mode", cfg.Mode, "max_actions", f.maxActions, "per", f.per)

	g, gctx := errgroup.WithContext(ctx)
	serveMetrics(gctx, g, f.metricsListen, reg)
	g.Go(func() error { return w.Run(gctx) })
	return g.Wait()
}

// actuatorSubjects registers the selected subjects: each one's catalog and,
// when its endpoint is configured, its executor. Executing needs every
// selected subject's endpoint.
func actuatorSubjects(f subjectFlags, execute bool) (map[string]actuators.Subject, error) {
	if len(f.names) == 0 {
		return nil, errors.New("--subjects: name at least one subject")
	}
	out := map[string]actuators.Subject{}
	for _, name := range f.names {
		sub, err := f.reg.Get(name)
		if err != nil {
			return nil, fmt.Errorf("--subjects: %w", err)
		}
		cat, err := sub.ActionCatalog()
		if err != nil {
			return nil, err
		}
		s := actuators.Subject{Catalog: cat}
		if newExec := f.execs[name]; newExec != nil {
			s.Executor, err = newExec()
			switch {
			case errors.Is(err, subjects.ErrNotConfigured) && !execute:
				// Observe mode records what it would do and needs no endpoint.
			case err != nil:
				return nil, fmt.Errorf("--mode execute on %s: %w", name, err)
			}
		} else if execute {
			return nil, fmt.Errorf("--mode execute on %s: the subject has no executor", name)
		}
		out[name] = s
	}
	return out, nil
}
