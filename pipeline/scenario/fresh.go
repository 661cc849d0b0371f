package scenario

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/operator-dev/operator/internal/bus"
	"github.com/operator-dev/operator/pipeline"
	"github.com/operator-dev/operator/ratelimiter"
	"github.com/operator-dev/operator/schemas"
	"github.com/operator-dev/operator/subjects"
	srl "github.com/operator-dev/operator/subjects/ratelimiter"
)

// Config is what RunFresh starts for a scenario: a rate limiter sandbox,
// the pipeline around it, and the instance name.
type Config struct {
	Sandbox  srl.SandboxConfig
	Pipeline pipeline.Config
	Instance string
	Interval time.Duration
}

// DefaultConfig is the stack a scenario runs on by default: three nodes on
// the node clock (so a skewed clock really changes decisions) with chaos
// hooks, the shipped rules, and the actuator executing.
func DefaultConfig() Config {
	return Config{
		Sandbox: srl.SandboxConfig{
			Nodes: 3,
			Limiter: ratelimiter.Config{
				EnableChaos: true,
				Clock:       ratelimiter.ClockNode,
			},
		},
		Instance: srl.DefaultInstance,
		Interval: srl.DefaultInterval,
	}
}

// Options adjust RunFresh.
type Options struct {
	// RecordTo, when set, receives the observations of the run as a
	// JSON-lines recording (see operator record), for replay tests.
	RecordTo io.Writer
}

// RunFresh starts a stack from cfg, runs sc on it and tears it down, so
// scenarios never see each other's state.
func RunFresh(ctx context.Context, cfg Config, sc Scenario, out io.Writer, opts Options) Result {
	fail := func(err error) Result { return Result{Scenario: sc.Name, Rule: sc.Rule, Action: sc.Action, Err: err} }
	if cfg.Sandbox.Logger == nil {
		cfg.Sandbox.Logger = cfg.Pipeline.Logger
	}
	sb, err := srl.StartSandbox(ctx, cfg.Sandbox)
	if err != nil {
		return fail(fmt.Errorf("start sandbox: %w", err))
	}
	d, err := sb.Deployment(cfg.Instance, cfg.Interval)
	if err != nil {
		return fail(fmt.Errorf("start sandbox: %w", err))
	}
	pc := cfg.Pipeline
	pc.Deployments = []*subjects.Deployment{d}
	p, err := pipeline.Start(ctx, pc)
	if err != nil {
		return fail(fmt.Errorf("start pipeline: %w", err))
	}
	defer func() { _ = p.Close() }()
	runCtx, cancel := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(runCtx)
	g.Go(func() error { return p.Run(gctx) })
	var res Result
	g.Go(func() error {
		defer cancel()
		env, err := NewEnv(gctx, sb.NodeURLs(), sb.Token(), sb.AdminRedis(), sb)
		if err != nil {
			res = fail(err)
			return nil
		}
		r := &Runner{Bus: p.Bus, Env: env, Instance: d.Instance, Out: out,
			Approve: func(ctx context.Context, id string) error { return p.Approve(ctx, id, "demo") }}
		res = r.Run(gctx, sc)
		return nil
	})
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		res.Err = errors.Join(res.Err, err)
	}
	if opts.RecordTo != nil {
		w := bus.NewRecordWriter(opts.RecordTo)
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer rcancel()
		if _, err := p.Bus.Record(rctx, schemas.StreamObservations, time.Time{}, w); err != nil {
			res.Err = errors.Join(res.Err, fmt.Errorf("record observations: %w", err))
		}
		res.Err = errors.Join(res.Err, w.Flush())
	}
	return res
}

// Deadline is the longest RunFresh may take for sc: start-up, steady state
// and the scenario's own deadline.
func Deadline(sc Scenario) time.Duration { return sc.Deadline + 90*time.Second }
