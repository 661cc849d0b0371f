package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/operator-dev/operator/pipeline/scenario"
	"github.com/operator-dev/operator/ratelimiter"
)

func newChaosCmd() *cobra.Command {
	var (
		nodes    []string
		redisURL string
		token    string
		hold     time.Duration
	)
	cmd := &cobra.Command{
		Use:   "chaos SCENARIO",
		Short: "Inject a scenario's fault into a running rate limiter stack, hold it, then take it back",
		Long: `Inject the fault of a demo scenario into a running stack (operator up, the
compose stack, or your own nodes) through the nodes' chaos hooks (they must run
with --enable-chaos) and plain Redis commands, hold it for --for, then take it
back (Ctrl-C takes it back at once). Watch Operator react with
'operator events tail'. node_kill needs the stack in this process: use
'operator demo node_kill', or stop a node yourself.

Scenarios: ` + strings.Join(scenario.Names(), ", "),
		Example: `  operator chaos clock_skew --nodes http://127.0.0.1:8081,http://127.0.0.1:8082,http://127.0.0.1:8083 --redis redis://127.0.0.1:6379/0
  operator chaos hot_key --for 2m --nodes http://127.0.0.1:8081`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: scenario.Names(),
		RunE: func(cmd *cobra.Command, args []string) error {
			sc, ok := scenario.Find(args[0])
			if !ok {
				return fmt.Errorf("unknown scenario %q; choose one of: %s", args[0], strings.Join(scenario.Names(), ", "))
			}
			rdb, err := ratelimiter.NewRedisClient(redisURL, 2*time.Second)
			if err != nil {
				return err
			}
			defer func() { _ = rdb.Close() }()
			env, err := scenario.NewEnv(cmd.Context(), nodes, token, rdb, nil)
			if err != nil {
				return err
			}
			return scenario.Inject(cmd.Context(), env, sc, hold, cmd.OutOrStdout())
		},
	}
	fs := cmd.Flags()
	fs.StringSliceVar(&nodes, "nodes", []string{"http://127.0.0.1:8081", "http://127.0.0.1:8082", "http://127.0.0.1:8083"}, "node base URLs (the second is the victim of single-node faults)")
	fs.StringVar(&redisURL, "redis", "redis://127.0.0.1:6379/0", "the limiter's Redis (operator up prints its URL)")
	fs.StringVar(&token, "token", "", "bearer token of the management API")
	fs.DurationVar(&hold, "for", time.Minute, "how long to hold the fault before taking it back")
	return cmd
}
