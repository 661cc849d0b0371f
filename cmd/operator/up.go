package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/operator-dev/operator/actuators"
	"github.com/operator-dev/operator/internal/bus"
	"github.com/operator-dev/operator/internal/eventlog"
	"github.com/operator-dev/operator/pipeline"
	"github.com/operator-dev/operator/schemas"
	"github.com/operator-dev/operator/statuspage"
	"github.com/operator-dev/operator/subjects"
)

// upFlags configure `operator up`.
type upFlags struct {
	store      string
	natsListen string
	natsURL    string
	rules      []string
	mode       string
	metrics    string
	uiListen   string
	ui         pageFlags
	quiet      bool
	layout     natsFlags
	llm        llmFlags
	// starts run each subject's local deployment, from its own flags.
	starts []localStart
	// subjects are the registered subjects, for the status page's views.
	subjects subjects.Registry
	// log receives the components' logs (default: slog.Default()).
	log *slog.Logger
}

func newUpCmd(reg subjects.Registry) *cobra.Command {
	f := upFlags{subjects: reg}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the whole pipeline in one process on embedded defaults",
		Long: `Run the whole pipeline in one process: an embedded NATS JetStream server (also
listening for the nats CLI), each subject's local deployment (the rate
limiter starts an embedded Redis-compatible store, or uses --redis, and its
nodes; TiKV joins when --pd is given), an observer per deployment, the
evaluator, the actuator, the diagnoser, a live log with one line per event,
and the status page beside the metrics (or on --ui-listen). Ctrl-C stops
everything cleanly.`,
		Example: `  operator up
  operator up --store ./.operator --nodes 5
  operator up --redis redis://127.0.0.1:6379/0 --nats nats://127.0.0.1:4222
  operator up --pd http://pd0:2379,http://pd1:2379 --prometheus http://prometheus:9090`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("log-level") {
				// The live event log is the output; components speak up
				// only when something is wrong.
				f.log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			}
			return runUp(cmd.Context(), cmd.OutOrStdout(), f)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.store, "store", "", "directory for the embedded JetStream store (default: a temporary directory removed on exit)")
	fs.StringVar(&f.natsListen, "nats-listen", "127.0.0.1:4222", "where the embedded NATS listens for the nats CLI and other processes ('' for in-process only)")
	fs.StringVar(&f.natsURL, "nats", "", "use this external NATS server instead of the embedded one")
	fs.StringSliceVar(&f.rules, "rules", nil, "rule files to use instead of the subjects' shipped rules")
	fs.StringVar(&f.mode, "mode", schemas.ModeExecute, "the actuator's mode: execute (act; up owns its sandbox) or observe (record what it would do)")
	fs.StringVar(&f.metrics, "metrics-listen", "127.0.0.1:9464", "serve the pipeline's Prometheus metrics here ('' for none; the nodes serve their own)")
	fs.StringVar(&f.uiListen, "ui-listen", "", "serve the status page here ('': beside the metrics on --metrics-listen; 'none': nowhere)")
	addPageFlags(cmd, &f.ui, "ui-")
	fs.BoolVar(&f.quiet, "quiet", false, "do not print the live event log")
	addBusLayoutFlags(cmd, &f.layout)
	addLLMFlags(cmd, &f.llm)
	for _, s := range reg {
		if s.Local.Flags != nil {
			f.starts = append(f.starts, localStart{s, s.Local.Flags(fs)})
		}
	}
	return cmd
}

// localStart is one subject's way to run in `operator up`.
type localStart struct {
	subject subjects.Subject
	start   subjects.StartLocal
}

func runUp(ctx context.Context, out io.Writer, f upFlags) error {
	log := f.log
	if log == nil {
		log = slog.Default()
	}
	reasoner, err := f.llm.reasoner(log)
	if err != nil {
		return err
	}
	var deps []*subjects.Deployment
	closeAll := func() {
		for _, d := range deps {
			if d.Close != nil {
				_ = d.Close()
			}
		}
	}
	env := subjects.Env{Logger: log, Version: buildVersion()}
	for _, ls := range f.starts {
		d, err := ls.start(ctx, env)
		if err != nil {
			closeAll()
			return portHint(fmt.Errorf("%s: %w", ls.subject.Name, err))
		}
		if d != nil {
			d.Subject = ls.subject
			deps = append(deps, d)
		}
	}
	cfg := pipeline.Config{
		Store: f.store, NATSListen: f.natsListen, NATSURL: f.natsURL,
		Bus:         bus.Config{Prefix: f.layout.prefix, Replicas: f.layout.replicas},
		Deployments: deps, RuleFiles: f.rules,
		Actuator: actuators.Config{Mode: f.mode},
		Reasoner: reasoner,
		Logger:   log,
	}
	reg := newRegistry()
	if f.metrics != "" {
		cfg.Registerer = reg
	}
	p, err := pipeline.Start(ctx, cfg) // owns deps from here, even when it fails
	if err != nil {
		return portHint(err)
	}
	defer func() {
		if err := p.Close(); err != nil {
			log.Warn("shutting down", "error", err)
		}
	}()
	var page http.Handler
	uiAddr := f.uiListen
	if uiAddr == "" {
		uiAddr = f.metrics
	}
	if uiAddr != "" && uiAddr != "none" {
		sets, err := p.RuleSets()
		if err != nil {
			return err
		}
		sp, err := statuspage.New(ctx, f.ui.config(f.subjects, sets, log), p.Bus)
		if err != nil {
			return err
		}
		page = sp.Handler()
	} else {
		uiAddr = ""
	}
	printEndpoints(out, p, f.metrics, uiAddr)

	g, gctx := errgroup.WithContext(ctx)
	if f.uiListen == "" {
		serveMetricsWith(gctx, g, f.metrics, reg, page)
	} else {
		serveMetrics(gctx, g, f.metrics, reg)
		if page != nil {
			serveHTTP(gctx, g, "status page", uiAddr, page)
		}
	}
	g.Go(func() error { return p.Run(gctx) })
	if !f.quiet {
		g.Go(func() error { return liveLog(gctx, p.Bus, out) })
	}
	err = g.Wait()
	if ctx.Err() != nil {
		fmt.Fprintln(out, "operator up: stopped")
		return nil
	}
	return err
}

// portHint adds what to do when a port is taken, the usual reason for up to
// fail at start.
func portHint(err error) error {
	if strings.Contains(err.Error(), "ready") || strings.Contains(err.Error(), "address already in use") {
		return fmt.Errorf("%w (another operator up may be running; pass --nats-listen and --node-listen with free ports, or port 0)", err)
	}
	return err
}

func printEndpoints(out io.Writer, p *pipeline.Pipeline, metricsAddr, uiAddr string) {
	natsURL := p.Bus.ClientURL()
	if natsURL == "" {
		natsURL = "(in-process only)"
	}
	var watched []string
	for _, d := range p.Deployments() {
		watched = append(watched, d.Subject.Name+"/"+d.Instance)
	}
	fmt.Fprintf(out, "operator up: watching %s\n", strings.Join(watched, ", "))
	fmt.Fprintf(out, "  NATS   %s\n", natsURL)
	for _, d := range p.Deployments() {
		for _, line := range d.Endpoints {
			fmt.Fprintf(out, "  %s\n", line)
		}
	}
	if u := p.Bus.ClientURL(); u != "" {
		fmt.Fprintf(out, "  watch every event: nats --server %s sub '%s'\n", u, p.Bus.Subjects().All())
		fmt.Fprintf(out, "  or:                operator events tail --nats %s\n", u)
	}
	if metricsAddr != "" {
		fmt.Fprintf(out, "  pipeline metrics:  http://%s/metrics\n", metricsAddr)
	}
	if uiAddr != "" {
		fmt.Fprintf(out, "  status page:       http://%s/  (JSON: http://%s/api/v1/status)\n", uiAddr, uiAddr)
	}
	fmt.Fprintln(out, "live events (observations hidden):")
}

// liveLog prints one line per stored event, observations excepted (one per
// observer poll would drown the rest).
func liveLog(ctx context.Context, b *bus.Bus, out io.Writer) error {
	obs, err := b.Subjects().Observations("")
	if err != nil {
		return err
	}
	obsPrefix := strings.TrimSuffix(obs, ">")
	return b.Tail(ctx, "", time.Time{}, func(subject string, e event.Event, err error) {
		if err != nil {
			fmt.Fprintf(out, "undecodable message on %s: %v\n", subject, err)
			return
		}
		if strings.HasPrefix(subject, obsPrefix) {
			return
		}
		fmt.Fprintln(out, eventlog.Line(e))
	})
}
