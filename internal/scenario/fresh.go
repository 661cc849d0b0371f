package scenario

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/operator-dev/operator/internal/bus"
	"github.com/operator-dev/operator/internal/stack"
	"github.com/operator-dev/operator/ratelimiter"
	"github.com/operator-dev/operator/schemas"
)

// StackConfig is the stack a scenario runs on by default: three nodes on the
// node clock (so a skewed clock really changes decisions) with chaos hooks,
// the shipped rules, and the actuator executing.
func StackConfig() stack.Config {
	return stack.Config{
		Nodes: 3,
		Limiter: ratelimiter.Config{
			EnableChaos: true,
			Clock:       ratelimiter.ClockNode,
		},
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
func RunFresh(ctx context.Context, cfg stack.Config, sc Scenario, out io.Writer, opts Options) Result {
	s, err := stack.Start(ctx, cfg)
	if err != nil {
		return Result{Scenario: sc.Name, Rule: sc.Rule, Action: sc.Action, Err: fmt.Errorf("start stack: %w", err)}
	}
	defer func() { _ = s.Close() }()
	runCtx, cancel := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(runCtx)
	g.Go(func() error { return s.Run(gctx) })
	var res Result
	g.Go(func() error {
		defer cancel()
		env, err := NewEnv(gctx, s.NodeURLs(), cfg.Token, s.AdminRedis(), s)
		if err != nil {
			res = Result{Scenario: sc.Name, Rule: sc.Rule, Action: sc.Action, Err: err}
			return nil
		}
		r := &Runner{Bus: s.Bus, Env: env, Instance: s.Instance(), Out: out,
			Approve: func(ctx context.Context, id string) error { return s.Approve(ctx, id, "demo") }}
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
		if _, err := s.Bus.Record(rctx, schemas.StreamObservations, time.Time{}, w); err != nil {
			res.Err = errors.Join(res.Err, fmt.Errorf("record observations: %w", err))
		}
		res.Err = errors.Join(res.Err, w.Flush())
	}
	return res
}

// Deadline is the longest RunFresh may take for sc: start-up, steady state
// and the scenario's own deadline.
func Deadline(sc Scenario) time.Duration { return sc.Deadline + 90*time.Second }
