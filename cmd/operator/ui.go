package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/operator-dev/operator/evaluators"
	"github.com/operator-dev/operator/internal/bus"
	"github.com/operator-dev/operator/statuspage"
	"github.com/operator-dev/operator/subjects"
)

// defaultUIListen is where `operator ui` serves the page; `operator up`
// serves it beside its metrics instead.
const defaultUIListen = "127.0.0.1:9465"

// pageFlags configure the status page in `operator ui` and `operator up`.
type pageFlags struct {
	token       string
	history     time.Duration
	maxEpisodes int
}

// addPageFlags registers the page's flags, each name after prefix ("ui-"
// in up, whose --token is the rate limiter's).
func addPageFlags(cmd *cobra.Command, f *pageFlags, prefix string) {
	fs := cmd.Flags()
	fs.StringVar(&f.token, prefix+"token", "", "bearer token the status page's controls (approve, reject, kill switch) require ('' for none; reads stay open)")
	fs.DurationVar(&f.history, prefix+"history", statuspage.DefaultHistory, "how far back the status page reads episodes")
	fs.IntVar(&f.maxEpisodes, prefix+"episodes", statuspage.DefaultMaxEpisodes, "how many episodes the status page lists")
}

// config builds the page's Config for the subjects of reg and the rule sets
// the evaluator runs.
func (f *pageFlags) config(reg subjects.Registry, sets []*evaluators.RuleSet, log *slog.Logger) statuspage.Config {
	return statuspage.Config{Token: f.token, History: f.history, MaxEpisodes: f.maxEpisodes,
		RuleSets: sets, Subjects: reg, Logger: log.With("component", "statuspage")}
}

func newUICmd(reg subjects.Registry) *cobra.Command {
	var (
		nf     natsFlags
		pf     pageFlags
		listen string
		rules  []string
	)
	cmd := &cobra.Command{
		Use:   "ui",
		Short: "Serve the live status page (and its JSON API) against a NATS server",
		Long: `Serve Operator's status page: what fires and what is pending, with the grace
left; each episode's causal timeline (violation, action, every gate's
decision, completion, verification, resolution) and its diagnosis; actions
awaiting approval with Approve and Reject; the kill switch; each subject's
health and tables. It reads the streams' history, so a reload loses nothing,
and follows them live. The same data is JSON under /api/v1/. Controls are
POSTs that need --token when it is set. operator up serves the same page
beside its metrics.`,
		Example: `  operator ui
  operator ui --nats nats://10.0.0.5:4222 --listen 0.0.0.0:9465 --token "$(cat ui.token)"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			log := slog.Default()
			sets, err := loadRuleSets(reg, rules)
			if err != nil {
				return err
			}
			b, err := nf.openBus(ctx, log, "operator-ui")
			if err != nil {
				return err
			}
			defer b.Close()
			return runUI(ctx, cmd.OutOrStdout(), b, listen, pf.config(reg, sets, log))
		},
	}
	addNATSFlags(cmd, &nf)
	fs := cmd.Flags()
	fs.StringVar(&listen, "listen", defaultUIListen, "address to serve the page on")
	fs.StringSliceVar(&rules, "rules", nil, "the evaluator's rule files, for the grace periods (default: the subjects' shipped rules)")
	addPageFlags(cmd, &pf, "")
	return cmd
}

// runUI serves the page on listen until ctx is done.
func runUI(ctx context.Context, out io.Writer, b *bus.Bus, listen string, cfg statuspage.Config) error {
	page, err := statuspage.New(ctx, cfg, b)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	serveHTTP(gctx, g, "status page", listen, page.Handler())
	fmt.Fprintf(out, "status page: http://%s/\n", listen)
	if err := g.Wait(); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// loadRuleSets loads rule files, or every subject's shipped rule set.
func loadRuleSets(reg subjects.Registry, files []string) ([]*evaluators.RuleSet, error) {
	if len(files) > 0 {
		return evaluators.LoadRuleSets(evaluators.LoadOptions{}, files...)
	}
	var sets []*evaluators.RuleSet
	for _, s := range reg {
		rs, err := s.RuleSet(evaluators.LoadOptions{})
		if err != nil {
			return nil, err
		}
		sets = append(sets, rs)
	}
	return sets, nil
}
