package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/operator-dev/operator/diagnosis"
	"github.com/operator-dev/operator/pipeline/scenario"
)

func newDemoCmd() *cobra.Command {
	var (
		redisURL string
		asJSON   bool
		verbose  bool
		record   string
		explain  bool
	)
	cmd := &cobra.Command{
		Use:   "demo SCENARIO|all",
		Short: "Run fault scenarios on a fresh pipeline and print what Operator did, with time to detect and to resolve",
		Long: `Each scenario starts a fresh pipeline in this process (embedded NATS, embedded
Redis unless --redis, three rate limiter nodes, observer, evaluator and an
actuator in execute mode), drives traffic, waits for a steady state, injects a
real fault and prints the timeline: injected, violation fired (time to
detect), action requested and completed, verified, violation resolved (time
to resolve). It exits non-zero when a scenario misses its deadline.

Scenarios: ` + strings.Join(scenario.Names(), ", "),
		Example: `  operator demo boundary_burst
  operator demo all`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: append(scenario.Names(), "all"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var scs []scenario.Scenario
			if args[0] == "all" {
				scs = scenario.All()
			} else {
				sc, ok := scenario.Find(args[0])
				if !ok {
					return fmt.Errorf("unknown scenario %q; choose one of: %s, all", args[0], strings.Join(scenario.Names(), ", "))
				}
				scs = []scenario.Scenario{sc}
			}
			cfg := scenario.DefaultConfig()
			cfg.Sandbox.RedisURL = redisURL
			cfg.Sandbox.Limiter.Version = buildVersion()
			if verbose {
				cfg.Pipeline.Logger = slog.Default()
			}
			return runDemo(cmd.Context(), cmd.OutOrStdout(), cfg, scs, asJSON, record, explain)
		},
	}
	cmd.Flags().StringVar(&redisURL, "redis", "", "run the nodes on this Redis instead of the embedded store")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the results as JSON lines after the timelines")
	cmd.Flags().BoolVar(&verbose, "verbose", false, "also print the components' logs")
	cmd.Flags().StringVar(&record, "record", "", "write each scenario's observations to DIR/ratelimiter-<scenario>.jsonl")
	cmd.Flags().BoolVar(&explain, "explain", false, "print each scenario's diagnosis with its evidence, as operator diagnose explain does")
	return cmd
}

func runDemo(ctx context.Context, out io.Writer, cfg scenario.Config, scs []scenario.Scenario, asJSON bool, record string, explain bool) error {
	var results []scenario.Result
	failed := 0
	for _, sc := range scs {
		fmt.Fprintf(out, "\n== %s: %s\n", sc.Name, sc.Description)
		var opts scenario.Options
		var f *os.File
		if record != "" {
			var err error
			if f, err = os.Create(filepath.Join(record, "ratelimiter-"+sc.Name+".jsonl")); err != nil {
				return err
			}
			opts.RecordTo = f
		}
		sctx, cancel := context.WithTimeout(ctx, scenario.Deadline(sc))
		res := scenario.RunFresh(sctx, cfg, sc, out, opts)
		cancel()
		if f != nil {
			if err := f.Close(); err != nil {
				return err
			}
		}
		if !res.OK() {
			failed++
			fmt.Fprintf(out, "  FAILED: %v\n", res.Err)
		}
		if explain && res.Diagnosed != nil {
			fmt.Fprintln(out)
			if err := diagnosis.Explain(out, *res.Diagnosed, 12); err != nil {
				return err
			}
		}
		results = append(results, res)
		if ctx.Err() != nil {
			break
		}
	}
	if len(results) > 1 {
		fmt.Fprintln(out)
		printTable(out, results)
	}
	printScore(out, results)
	if asJSON {
		enc := json.NewEncoder(out)
		for _, r := range results {
			_ = enc.Encode(resultJSON(r))
		}
	}
	if failed > 0 {
		return exitError{code: 1, msg: fmt.Sprintf("%d of %d scenario(s) failed", failed, len(results))}
	}
	return nil
}

func printTable(out io.Writer, results []scenario.Result) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tRULE FIRED\tTTD\tDIAGNOSIS\tCORRECT\tACTION\tOUTCOME\tVERIFIED\tTTR\tRESULT")
	for _, r := range results {
		fired, ttd, ttr := "-", "-", "-"
		if r.Fired {
			fired, ttd = r.Rule, fmt.Sprintf("%.1fs", r.TTD.Seconds())
		}
		if r.Resolved {
			ttr = fmt.Sprintf("%.1fs", r.TTR.Seconds())
		}
		action, outcome, verified := "-", "-", "-"
		if r.Action != "" {
			action = r.Action
			if r.Outcome != "" {
				outcome = r.Outcome
			}
			if r.Verified != nil {
				verified = fmt.Sprint(*r.Verified)
			}
		}
		diag, correct := "-", "-"
		if r.Diagnosis != "" {
			diag = fmt.Sprintf("%s (%s, %.1fs)", r.Diagnosis, r.Certainty, r.DiagnosisAfter.Seconds())
			correct = map[bool]string{true: "yes", false: "NO"}[r.Correct]
		}
		result := "ok"
		if !r.OK() {
			result = "FAILED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Scenario, fired, ttd, diag, correct, action, outcome, verified, ttr, result)
	}
	_ = tw.Flush()
}

func resultJSON(r scenario.Result) map[string]any {
	m := map[string]any{"scenario": r.Scenario, "rule": r.Rule, "fired": r.Fired, "ttd_s": r.TTD.Seconds(),
		"action": r.Action, "outcome": r.Outcome, "resolved": r.Resolved, "ttr_s": r.TTR.Seconds(), "ok": r.OK(),
		"diagnosis": r.Diagnosis, "certainty": r.Certainty, "diagnosis_after_s": r.DiagnosisAfter.Seconds(), "correct": r.Correct}
	if r.Verified != nil {
		m["verified"] = *r.Verified
	}
	if r.Err != nil {
		m["error"] = r.Err.Error()
	}
	if len(r.Unexpected) > 0 {
		m["unexpected"] = r.Unexpected
	}
	return m
}

// printScore sums up the diagnoses: how many named the true root cause,
// and the slowest one after its violation.
func printScore(out io.Writer, results []scenario.Result) {
	correct, diagnosed := 0, 0
	var slowest time.Duration
	for _, r := range results {
		if r.Diagnosis == "" {
			continue
		}
		diagnosed++
		if r.Correct {
			correct++
		}
		slowest = max(slowest, r.DiagnosisAfter)
	}
	if diagnosed == 0 {
		return
	}
	fmt.Fprintf(out, "diagnosis: %d of %d scenarios correct (%d diagnosed); the slowest came %.1fs after its violation\n",
		correct, len(results), diagnosed, slowest.Seconds())
}
