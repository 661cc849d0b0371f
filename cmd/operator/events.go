package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/spf13/cobra"

	"github.com/operator-dev/operator/internal/eventlog"
)

func newEventsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Watch Operator's events",
	}
	cmd.AddCommand(newEventsTailCmd())
	return cmd
}

func newEventsTailCmd() *cobra.Command {
	var (
		nf      natsFlags
		showObs bool
		since   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "tail [FILTER]",
		Short: "Print one line per event as it is published (like nats sub, readable)",
		Example: `  operator events tail
  operator events tail --since 10m
  operator events tail 'operator.violation.>'
  operator events tail --observations 'operator.obs.ratelimiter.>'`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := nf.openBus(cmd.Context(), slog.Default(), "operator-events-tail")
			if err != nil {
				return err
			}
			defer b.Close()
			filter := b.Subjects().All()
			if len(args) == 1 {
				filter, showObs = args[0], true
			}
			out := cmd.OutOrStdout()
			obsPrefix := nf.prefix + ".obs."
			from := sinceTime(since)
			return b.Tail(cmd.Context(), filter, from, func(subject string, e event.Event, err error) {
				if err != nil {
					fmt.Fprintf(out, "undecodable message on %s: %v\n", subject, err)
					return
				}
				if !showObs && len(subject) > len(obsPrefix) && subject[:len(obsPrefix)] == obsPrefix {
					return
				}
				fmt.Fprintln(out, eventlog.Line(e))
			})
		},
	}
	addNATSFlags(cmd, &nf)
	cmd.Flags().DurationVar(&since, "since", 0, "first print the events stored within this long ago")
	cmd.Flags().BoolVar(&showObs, "observations", false, "also print observations (one per observer poll; always on when FILTER is given)")
	return cmd
}
