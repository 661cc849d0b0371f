package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/operator-dev/operator/ratelimiter/bench"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure a subject under load",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newBenchRatelimiterCmd())
	return cmd
}

func newBenchRatelimiterCmd() *cobra.Command {
	var (
		cfg     bench.Config
		asJSON  bool
		targets []string
	)
	cmd := &cobra.Command{
		Use:   "ratelimiter --targets URL[,URL...]",
		Short: "Drive POST /v1/check over HTTP/1.1 keep-alive; print decisions/s, latency percentiles, node CPU per decision and errors",
		Long: `Drive the nodes' check endpoint and report decisions per second, latency
percentiles and errors. By default each of --concurrency workers sends its
next check when the last is answered (closed loop); --rate N offers N
decisions per second whatever the answers (open loop), and measures each
latency from the request's intended send time, so a stall shows in the
percentiles. --batch N sends N checks per request to /v1/check:batch.

--ceiling REDIS_URL first measures how many un-pipelined EVALSHA calls per
second that Redis answers at the same concurrency (what redis-benchmark -c N
evalsha measures) and prints the ratio of the decisions per second to it.
When the nodes export process_cpu_seconds_total (operator ratelimiter serve
does), the CPU they spent per decision is reported too.`,
		Example: `  operator bench ratelimiter --targets http://127.0.0.1:8081 --concurrency 64 --duration 10s --keys 1000
  operator bench ratelimiter --targets http://127.0.0.1:8081,http://127.0.0.1:8082,http://127.0.0.1:8083 --ceiling redis://127.0.0.1:6379/0 --json
  operator bench ratelimiter --targets http://127.0.0.1:8081 --rate 10000 --duration 30s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg.Targets = targets
			if err := cfg.Validate(); err != nil {
				return err
			}
			res, err := bench.Run(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			_, err = fmt.Fprint(out, res.String())
			return err
		},
	}
	fs := cmd.Flags()
	fs.StringSliceVar(&targets, "targets", nil, "node base URLs, comma-separated; requests go round robin")
	fs.IntVar(&cfg.Concurrency, "concurrency", bench.DefaultConcurrency, "workers, each with one request in flight")
	fs.DurationVar(&cfg.Duration, "duration", bench.DefaultDuration, "how long to run")
	fs.IntVar(&cfg.Keys, "keys", bench.DefaultKeys, "distinct keys, picked uniformly at random")
	fs.StringVar(&cfg.KeyPrefix, "key-prefix", bench.DefaultKeyPrefix, "prefix of every key")
	fs.DurationVar(&cfg.Timeout, "timeout", 5*time.Second, "bound on each request")
	fs.Float64Var(&cfg.Rate, "rate", 0, "offer this many decisions per second (open loop; 0: closed loop)")
	fs.IntVar(&cfg.Batch, "batch", 1, "checks per request; above 1 they go to /v1/check:batch")
	fs.StringVar(&cfg.Ceiling, "ceiling", "", "measure the un-pipelined EVALSHA rate of this Redis first, and print the ratio to it")
	fs.DurationVar(&cfg.CeilingDuration, "ceiling-duration", bench.DefaultCeilingDuration, "how long the ceiling is measured")
	fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
	_ = cmd.MarkFlagRequired("targets")
	return cmd
}
