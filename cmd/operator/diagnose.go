package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/operator-dev/operator/diagnosis"
	"github.com/operator-dev/operator/pipeline"
	"github.com/operator-dev/operator/schemas"
	"github.com/operator-dev/operator/subjects"
)

func newDiagnoseCmd(reg subjects.Registry) *cobra.Command {
	var (
		nf            natsFlags
		workerID      string
		workers       int
		timeout       time.Duration
		promURL       string
		metricsListen string
		llmf          llmFlags
	)
	apis := map[string]subjects.NewGetter{}
	cmd := &cobra.Command{
		Use:   "diagnose",
		Short: "Explain every firing violation: gather evidence, rank its possible causes, publish a diagnosis",
		Long: `Run the diagnoser: a durable consumer on OPERATOR_VIOLATIONS that answers every
new firing episode with an io.operator.diagnosis.v1 event on
operator.diagnosis.<subject>.<instance>. It reads the evidence the subject's
playbook (subjects/<name>/diagnosis.yaml) declares — the latest observations,
the other alerts on the instance, recent actions, GETs on the subject's API,
Prometheus queries — never writing anything, and ranks the playbook's
hypotheses over it. A source that fails is kept as failed evidence.

With --llm anthropic (and ANTHROPIC_API_KEY), a model reasons over the same
evidence with read-only tools and answers in the same schema; when it fails,
the deterministic answer is published with the error. A diagnosis is advice:
a suggested action still goes through 'operator act' and every gate.`,
		Example: `  operator diagnose --ratelimiter-url http://127.0.0.1:8081
  operator diagnose --pd-url http://pd0:2379 --prometheus http://prometheus:9090 --llm anthropic --redact
  operator diagnose explain 3f2a9c`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			log := slog.Default()
			subs := map[string]diagnosis.Subject{}
			for _, s := range reg {
				pb, err := s.DiagnosisPlaybook()
				if err != nil {
					return err
				}
				ds := diagnosis.Subject{Playbook: pb}
				if len(s.Catalog.Data) > 0 {
					if ds.Catalog, err = s.ActionCatalog(); err != nil {
						return err
					}
				}
				if newAPI := apis[s.Name]; newAPI != nil {
					if ds.API, err = newAPI(); err != nil {
						return fmt.Errorf("%s: %w", s.Name, err)
					}
				}
				if promURL != "" {
					ds.Prometheus = &diagnosis.PrometheusClient{URL: promURL}
				}
				subs[s.Name] = ds
			}
			reasoner, err := llmf.reasoner(log)
			if err != nil {
				return err
			}
			metrics := newRegistry()
			cfg := diagnosis.Config{WorkerID: workerID, SubjectPrefix: nf.prefix, Timeout: timeout, Logger: log, Registerer: metrics}
			if err := cfg.Validate(); err != nil {
				return err
			}
			bc := nf.config(log)
			bc.Name, bc.Registerer = "operator-diagnose", metrics
			b, err := pipeline.OpenBus(ctx, bc)
			if err != nil {
				return err
			}
			defer b.Close()
			log.Info("diagnosing", "subjects", reg.Names(), "workers", workers, "llm", llmf.provider)
			g, gctx := errgroup.WithContext(ctx)
			serveMetrics(gctx, g, metricsListen, metrics)
			g.Go(func() error { return pipeline.RunDiagnoser(gctx, b, cfg, subs, reasoner, workers) })
			return g.Wait()
		},
	}
	addNATSFlags(cmd, &nf)
	fs := cmd.Flags()
	fs.StringVar(&workerID, "worker-id", defaultWorkerID(), "this diagnoser's name in event sources")
	fs.IntVar(&workers, "workers", pipeline.DiagnoserWorkers, "violations diagnosed at once")
	fs.DurationVar(&timeout, "timeout", diagnosis.DefaultTimeout, "bound on one diagnosis (evidence and reasoning)")
	fs.StringVar(&promURL, "prometheus", "", "Prometheus that answers the playbooks' queries (empty: those sources fail, and say so)")
	fs.StringVar(&metricsListen, "metrics-listen", "", "serve Prometheus metrics on this address (e.g. :9467; empty: off)")
	addLLMFlags(cmd, &llmf)
	for _, s := range reg {
		if s.API.Flags != nil {
			apis[s.Name] = s.API.Flags(fs)
		}
	}
	cmd.AddCommand(newDiagnoseExplainCmd())
	return cmd
}

func newDiagnoseExplainCmd() *cobra.Command {
	var (
		nf     natsFlags
		since  time.Duration
		full   bool
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "explain EPISODE",
		Short: "Print the diagnosis of one episode (an id or a unique prefix) with its evidence",
		Example: `  operator diagnose explain 3f2a9c
  operator diagnose explain 3f2a9c --json | jq '.hypotheses[0]'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := nf.openBus(cmd.Context(), slog.Default(), "operator-diagnose-explain")
			if err != nil {
				return err
			}
			defer b.Close()
			var found []schemas.Diagnosis
			episodes := map[string]bool{}
			err = b.ReadEvents(cmd.Context(), schemas.StreamDiagnoses, sinceTime(since), func(_ string, e event.Event, err error) error {
				var d schemas.Diagnosis
				if err != nil || json.Unmarshal(e.Data(), &d) != nil || !strings.HasPrefix(d.Episode, args[0]) {
					return nil
				}
				found = append(found, d)
				episodes[d.Episode] = true
				return nil
			})
			if err != nil {
				return err
			}
			switch {
			case len(found) == 0:
				return fmt.Errorf("no diagnosis of an episode %q in %s (is a diagnoser running? see operator events tail)", args[0], schemas.StreamDiagnoses)
			case len(episodes) > 1:
				return fmt.Errorf("%q matches %d episodes; give more of the id", args[0], len(episodes))
			}
			out := cmd.OutOrStdout()
			for i, d := range found {
				if asJSON {
					if err := json.NewEncoder(out).Encode(d); err != nil {
						return err
					}
					continue
				}
				if i > 0 {
					fmt.Fprintln(out)
				}
				lines := 20
				if full {
					lines = 0
				}
				if err := diagnosis.Explain(out, d, lines); err != nil {
					return err
				}
			}
			return nil
		},
	}
	addNATSFlags(cmd, &nf)
	cmd.Flags().DurationVar(&since, "since", 30*24*time.Hour, "search diagnoses stored within this long ago (0: all)")
	cmd.Flags().BoolVar(&full, "full", false, "show every line of the evidence")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the diagnosis data as JSON")
	return cmd
}
