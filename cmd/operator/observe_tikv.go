package main

import (
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/operator-dev/operator/internal/pdapi"
	"github.com/operator-dev/operator/internal/tikvmetrics"
	"github.com/operator-dev/operator/observers"
	tikvobs "github.com/operator-dev/operator/observers/tikv"
)

func newObserveTikvCmd() *cobra.Command {
	var (
		nf       natsFlags
		instance string
		pdURLs   []string
		promURL  string
		interval time.Duration

		metricsListen string
		reqTimeout    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "tikv",
		Short: "Observe a TiKV cluster through PD and Prometheus",
		Long: `Poll a TiKV cluster every --interval through PD's HTTP API: every store
(Tombstones included) with its state, heartbeat age, sizes and leader and
region counts, the evict-leader scheduler, store limits, regions with down,
missing, pending and offline peers, PD members' health, the schedule
configuration and running operators. With --prometheus, each store also gets
its gRPC p99 and raft log lag, joined on the store's status address (the
'instance' label of the TiKV scrape targets). Any PD member answers; the
observer fails over across --pd URLs. A source that cannot be read is listed
in the observation's observer.errors and its fields are left out; the rest
is still published.`,
		Example: `  operator observe tikv --instance prod --pd http://pd0:2379,http://pd1:2379,http://pd2:2379 --prometheus http://prometheus:9090
  operator evaluate --rules observers/tikv/rules.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log := slog.Default()
			src, err := tikvobs.New(tikvobs.Config{
				PD:         pdapi.Config{URLs: pdURLs, RequestTimeout: reqTimeout},
				Prometheus: tikvmetrics.Config{URL: promURL, Timeout: reqTimeout},
			})
			if err != nil {
				return err
			}
			log.Info("observing", "subject", tikvobs.Subject, "instance", instance, "pd", strings.Join(pdURLs, ","),
				"prometheus", promURL, "interval", interval)
			return runObserve(cmd.Context(), &nf, metricsListen,
				observers.Config{Subject: tikvobs.Subject, Instance: instance, Interval: interval, Logger: log}, src)
		},
	}
	addNATSFlags(cmd, &nf)
	fs := cmd.Flags()
	fs.StringVar(&instance, "instance", "", "name of this TiKV cluster (a NATS subject token)")
	fs.StringSliceVar(&pdURLs, "pd", nil, "PD URLs (comma-separated), e.g. http://pd0:2379")
	fs.StringVar(&promURL, "prometheus", "", "Prometheus that scrapes the TiKV status ports (empty: no latency data)")
	fs.DurationVar(&interval, "interval", 10*time.Second, "poll interval")
	fs.StringVar(&metricsListen, "metrics-listen", "", "serve Prometheus metrics and /healthz on this address (e.g. :9464; empty: off)")
	fs.DurationVar(&reqTimeout, "request-timeout", pdapi.DefaultRequestTimeout, "timeout of one PD call or Prometheus query")
	_ = cmd.MarkFlagRequired("instance")
	_ = cmd.MarkFlagRequired("pd")
	return cmd
}
