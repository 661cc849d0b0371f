package scenario

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/operator-dev/operator/ratelimiter/loadgen"
)

// Inject applies sc's fault to env by hand, as `operator chaos` does: setup,
// the fault and its traffic, held for hold (or until ctx ends), then taken
// back. Progress goes to out.
func Inject(ctx context.Context, env *Env, sc Scenario, hold time.Duration, out io.Writer) error {
	if sc.Setup != nil {
		if err := sc.Setup(ctx, env); err != nil {
			return fmt.Errorf("setup: %w", err)
		}
	}
	undo, err := sc.Inject(ctx, env)
	if err != nil {
		return fmt.Errorf("inject: %w", err)
	}
	fmt.Fprintf(out, "injected %s: %s\n", sc.Name, sc.Description)
	holdCtx, cancel := context.WithTimeout(ctx, hold)
	defer cancel()
	done := make(chan struct{})
	if sc.FaultLoad != nil {
		fl := *sc.FaultLoad
		fl.Targets = env.URLs()
		go func() {
			defer close(done)
			_, _ = loadgen.Run(holdCtx, fl, nil)
		}()
		fmt.Fprintf(out, "sending %s traffic for %s\n", fl.Pattern, hold)
	} else {
		close(done)
	}
	fmt.Fprintf(out, "holding the fault for %s (Ctrl-C takes it back now)\n", hold)
	<-holdCtx.Done()
	<-done
	if undo == nil {
		fmt.Fprintln(out, "nothing to take back: the fault was the traffic, or the repair takes it back")
		return nil
	}
	uctx, ucancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer ucancel()
	if err := undo(uctx); err != nil {
		return fmt.Errorf("take back %s: %w", sc.Name, err)
	}
	fmt.Fprintf(out, "took back %s\n", sc.Name)
	return nil
}
