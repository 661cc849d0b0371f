package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/spf13/cobra"

	"github.com/operator-dev/operator/evaluators"
	"github.com/operator-dev/operator/internal/bus"
)

func newReplayCmd() *cobra.Command {
	var (
		rules      []string
		input      string
		asJSON     bool
		prefix     string
		staleAfter time.Duration
	)
	cmd := &cobra.Command{
		Use:   "replay --rules FILE... --input RECORDING.jsonl",
		Short: "Replay a recording through the evaluator offline and print what it would emit",
		Long: `Feed the observations of a recording (the JSON-lines format of operator record)
through the evaluator on a virtual clock, without NATS, and print the violation
and action-request events it would publish, one per line. The same recording
always gives the same output, byte for byte.`,
		Example: `  operator replay --rules observers/ratelimiter/rules.yaml --input tests/testdata/recordings/node-down.jsonl
  operator replay --rules rules.yaml --input rec.jsonl --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// No logger: every event is printed already.
			cfg := evaluators.Config{WorkerID: "replay", SubjectPrefix: prefix, StaleAfter: staleAfter}
			return runReplay(cmd.Context(), cmd.OutOrStdout(), rules, input, asJSON, cfg)
		},
	}
	fs := cmd.Flags()
	fs.StringArrayVar(&rules, "rules", nil, "rule file (repeat for several)")
	fs.StringVar(&input, "input", "", "recording to replay (JSON lines; - for standard input)")
	fs.BoolVar(&asJSON, "json", false, "print each event as a structured CloudEvent (JSON)")
	fs.StringVar(&prefix, "subject-prefix", "operator", "first token of every Operator subject")
	fs.DurationVar(&staleAfter, "stale-after", 0, "silence after which observer_stale fires, for rule files without stale_after")
	_ = cmd.MarkFlagRequired("rules")
	_ = cmd.MarkFlagRequired("input")
	return cmd
}

func runReplay(ctx context.Context, out io.Writer, rules []string, input string, asJSON bool, cfg evaluators.Config) error {
	sets, err := evaluators.LoadRuleSets(evaluators.LoadOptions{}, rules...)
	if err != nil {
		return err
	}
	var in io.Reader = os.Stdin
	if input != "-" {
		f, err := os.Open(input)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	rr := bus.NewRecordReader(in)
	next := func() (event.Event, error) {
		r, err := rr.Next()
		if err != nil {
			return event.Event{}, err
		}
		e, err := r.Event()
		if err != nil {
			return event.Event{}, fmt.Errorf("%s: record on %s: %w", input, r.Subject, err)
		}
		return e, nil
	}
	w := bufio.NewWriter(out)
	emit := func(_ string, e event.Event) error {
		if asJSON {
			b, err := bus.EventJSON(e)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(w, "%s\n", b)
			return err
		}
		_, err := fmt.Fprintln(w, evaluators.FormatEvent(e))
		return err
	}
	st, err := evaluators.Replay(ctx, cfg, sets, next, emit)
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return err
	}
	slog.Default().Info("replay done", "observations", st.Observations, "skipped", st.Skipped, "emitted", st.Emitted)
	return nil
}
