package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/operator-dev/operator/ratelimiter/loadgen"
)

func newLoadgenCmd() *cobra.Command {
	var cfg loadgen.Config
	var pattern string
	cmd := &cobra.Command{
		Use:   "loadgen",
		Short: "Send rate-limited traffic at rate limiter nodes and report decisions per second",
		Long: `Send open-loop traffic (a fixed rate, whatever the latency) spread over the
targets, and print allowed, denied and failed checks every second.
Patterns: steady (even over --keys keys), hotkey (half the rate on one key),
boundary (only bursts on --burst-key, just before and just after every end
of its --window: a fixed window admits both; run a steady loadgen beside it
for background traffic).`,
		Example: `  operator loadgen --targets http://127.0.0.1:8081,http://127.0.0.1:8082 --rps 200 --keys 20 --duration 30s
  operator loadgen --targets http://127.0.0.1:8081 --pattern hotkey --rps 400
  operator loadgen --targets http://127.0.0.1:8081 --pattern boundary --burst-key burst:1 --burst 50 --window 10s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg.Pattern = loadgen.Pattern(pattern)
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%-8s %8s %8s %8s %8s\n", "time", "allowed", "denied", "errors", "skipped")
			tot, err := loadgen.Run(cmd.Context(), cfg, func(s loadgen.Second) {
				fmt.Fprintf(out, "%-8s %8d %8d %8d %8d\n", s.At.Format("15:04:05"), s.Allowed, s.Denied, s.Errors, s.Skipped)
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "total over %ds: %d allowed, %d denied, %d errors, %d skipped\n", tot.Seconds, tot.Allowed, tot.Denied, tot.Errors, tot.Skipped)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringSliceVar(&cfg.Targets, "targets", []string{"http://127.0.0.1:8081"}, "node base URLs")
	fs.IntVar(&cfg.RPS, "rps", loadgen.DefaultRPS, "checks per second")
	fs.IntVar(&cfg.Keys, "keys", loadgen.DefaultKeys, "distinct steady keys")
	fs.StringVar(&pattern, "pattern", string(loadgen.Steady), "steady, hotkey or boundary")
	fs.DurationVar(&cfg.Duration, "duration", 0, "how long to run (0: until Ctrl-C)")
	fs.StringVar(&cfg.KeyPrefix, "key-prefix", loadgen.DefaultKeyPrefix, "prefix of the steady keys")
	fs.StringVar(&cfg.HotKey, "hot-key", loadgen.DefaultHotKey, "the hot key of the hotkey pattern")
	fs.StringVar(&cfg.BurstKey, "burst-key", loadgen.DefaultBurstKey, "the key the boundary pattern bursts on")
	fs.IntVar(&cfg.Burst, "burst", loadgen.DefaultBurst, "checks per burst")
	fs.DurationVar(&cfg.Window, "window", loadgen.DefaultWindow, "window whose boundaries the bursts straddle")
	fs.IntVar(&cfg.Workers, "workers", loadgen.DefaultWorkers, "concurrent requests at most")
	fs.StringVar(&cfg.Token, "token", "", "bearer token (checks do not need one)")
	return cmd
}
