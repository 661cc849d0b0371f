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
		Short: "Drive POST /v1/check over HTTP/1.1 keep-alive; print decisions/s, latency percentiles and errors",
		Example: `  operator bench ratelimiter --targets http://127.0.0.1:8081 --concurrency 64 --duration 10s --keys 1000
  operator bench ratelimiter --targets http://127.0.0.1:8081,http://127.0.0.1:8082 --json`,
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
	fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
	_ = cmd.MarkFlagRequired("targets")
	return cmd
}
