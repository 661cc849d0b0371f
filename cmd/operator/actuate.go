package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/operator-dev/operator/actuators"
	actratelimiter "github.com/operator-dev/operator/actuators/ratelimiter"
	acttikv "github.com/operator-dev/operator/actuators/tikv"
	"github.com/operator-dev/operator/internal/pdapi"
	"github.com/operator-dev/operator/internal/stack"
	"github.com/operator-dev/operator/ratelimiter/client"
	"github.com/operator-dev/operator/schemas"
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
// APIs.
type subjectFlags struct {
	names            []string
	ratelimiterURLs  []string
	ratelimiterToken string
	pdURLs           []string
}

func addSubjectFlags(cmd *cobra.Command, f *subjectFlags) {
	fs := cmd.Flags()
	fs.StringSliceVar(&f.names, "subjects", []string{actratelimiter.Name}, "subjects to act on (comma-separated): "+strings.Join(knownActuatorSubjects(), ", "))
	fs.StringSliceVar(&f.ratelimiterURLs, "ratelimiter-url", nil, "base URL of rate limiter nodes (comma-separated; any node can act for all)")
	fs.StringVar(&f.ratelimiterToken, "ratelimiter-token", "", "bearer token of the rate limiter's management API")
	fs.StringSliceVar(&f.pdURLs, "pd-url", nil, "PD URLs of the TiKV cluster (comma-separated; any member can act)")
}

func newActuateCmd() *cobra.Command {
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
	addSubjectFlags(cmd, &f.subjects)
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
	subjects, err := actuatorSubjects(f.subjects, f.mode == schemas.ModeExecute)
	if err != nil {
		return err
	}
	busCfg := f.nats.config(log)
	busCfg.Name = "operator-actuate"
	busCfg.Registerer = reg
	b, err := openDeclared(ctx, busCfg)
	if err != nil {
		return err
	}
	defer func() {
		if err := b.Close(); err != nil {
			log.Warn("closing nats", "error", err)
		}
	}()
	deps, err := stack.ActuatorDeps(ctx, b, subjects)
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

// knownActuatorSubjects are the subjects this binary has an action catalog
// and executor for.
func knownActuatorSubjects() []string { return []string{actratelimiter.Name, acttikv.Name} }

// actuatorCatalogs returns the action catalog of every known subject.
func actuatorCatalogs() (map[string]*actuators.Catalog, error) {
	cat, err := actratelimiter.Catalog()
	if err != nil {
		return nil, err
	}
	tikvCat, err := acttikv.Catalog()
	if err != nil {
		return nil, err
	}
	return map[string]*actuators.Catalog{actratelimiter.Name: cat, acttikv.Name: tikvCat}, nil
}

// actuatorSubjects registers the selected subjects: each one's catalog and,
// when its endpoint is configured, its executor. Executing needs every
// selected subject's endpoint.
func actuatorSubjects(f subjectFlags, execute bool) (map[string]actuators.Subject, error) {
	cats, err := actuatorCatalogs()
	if err != nil {
		return nil, err
	}
	if len(f.names) == 0 {
		return nil, errors.New("--subjects: name at least one subject")
	}
	out := map[string]actuators.Subject{}
	for _, name := range f.names {
		cat, ok := cats[name]
		if !ok {
			return nil, fmt.Errorf("--subjects: no actuator for subject %q (known: %s)", name, strings.Join(knownActuatorSubjects(), ", "))
		}
		s := actuators.Subject{Catalog: cat}
		switch name {
		case actratelimiter.Name:
			if len(f.ratelimiterURLs) == 0 {
				if execute {
					return nil, errors.New("--mode execute on the rate limiter needs --ratelimiter-url")
				}
				break
			}
			var clients []*client.Client
			for _, u := range f.ratelimiterURLs {
				// The worker bounds every call with its own timeout.
				c, err := client.New(strings.TrimSpace(u), &http.Client{})
				if err != nil {
					return nil, fmt.Errorf("--ratelimiter-url: %w", err)
				}
				clients = append(clients, c.WithToken(f.ratelimiterToken))
			}
			e, err := actratelimiter.NewExecutor(clients...)
			if err != nil {
				return nil, err
			}
			s.Executor = e
		case acttikv.Name:
			if len(f.pdURLs) == 0 {
				if execute {
					return nil, errors.New("--mode execute on TiKV needs --pd-url")
				}
				break
			}
			pd, err := pdapi.New(pdapi.Config{URLs: f.pdURLs})
			if err != nil {
				return nil, fmt.Errorf("--pd-url: %w", err)
			}
			if s.Executor, err = acttikv.NewExecutor(pd); err != nil {
				return nil, err
			}
		}
		out[name] = s
	}
	return out, nil
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
