package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/operator-dev/operator/evaluators"
)

func newRulesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "Check and test rule files",
	}
	cmd.AddCommand(newRulesCheckCmd(), newRulesTestCmd())
	return cmd
}

func newRulesCheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "check FILE...",
		Short:   "Run the load-time checks on rule files; exit 1 with every problem found",
		Example: `  operator rules check subjects/ratelimiter/rules.yaml`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sets, err := evaluators.LoadRuleSets(evaluators.LoadOptions{}, args...)
			out := cmd.OutOrStdout()
			if err != nil {
				problems := evaluators.Errors(err)
				for _, p := range problems {
					fmt.Fprintln(out, p)
				}
				return exitError{code: 1, msg: fmt.Sprintf("%d problem(s) in %d file(s)", len(problems), len(args))}
			}
			for _, rs := range sets {
				checked := "fields checked against " + rs.CheckedAgainst()
				if rs.CheckedAgainst() == "" {
					checked = "obs.state fields NOT checked: no state schema for " + rs.Subject + " (set state_schema)"
				}
				fmt.Fprintf(out, "%s: ok (subject %s, %d rules; %s)\n", rs.File, rs.Subject, len(rs.Rules), checked)
			}
			return nil
		},
	}
}

func newRulesTestCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "test FILE...",
		Short:   "Run rule unit tests (promtool test rules style); exit 1 on failure",
		Example: `  operator rules test subjects/ratelimiter/rules_test.yaml`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ok, err := evaluators.RunTests(cmd.Context(), cmd.OutOrStdout(), evaluators.LoadOptions{}, args...)
			if err != nil || !ok {
				// The report already says what failed.
				return exitError{code: 1}
			}
			return nil
		},
	}
}
