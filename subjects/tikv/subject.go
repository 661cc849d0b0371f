package tikv

import (
	"context"
	"embed"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/operator-dev/operator/actuators"
	"github.com/operator-dev/operator/diagnosis"
	"github.com/operator-dev/operator/observers"
	"github.com/operator-dev/operator/subjects"
	"github.com/operator-dev/operator/subjects/tikv/pdapi"
	"github.com/operator-dev/operator/subjects/tikv/tikvmetrics"
)

// Name is the subject's name: the token in NATS subjects, rule files and
// catalogs.
const Name = "tikv"

// Defaults of the observer. PD and Prometheus change slower than a rate
// limiter, so it polls less often.
const (
	DefaultInterval = 10 * time.Second
	// DefaultLocalInstance names the cluster `operator up --pd` watches.
	DefaultLocalInstance = "tikv"
)

//go:embed rules.yaml rules_test.yaml actions.yaml diagnosis.yaml
var files embed.FS

// Dir is the subject's folder in the repository, which messages name.
const Dir = "subjects/tikv"

// Subject returns the TiKV subject as it plugs into the pipeline.
func Subject() subjects.Subject {
	return subjects.Subject{
		Name:  Name,
		Title: "TiKV cluster",
		Files: shipped(),
		Observer: subjects.Observer{
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
  operator evaluate --rules subjects/tikv/rules.yaml`,
			DefaultInterval: DefaultInterval,
			Required:        []string{"pd"},
			Flags:           observerFlags,
		},
		Executor: subjects.Executor{Flags: executorFlags},
		API:      subjects.API{Flags: apiFlags},
		Local:    subjects.Local{Flags: localFlags},
		Views:    views(),
	}
}

// shipped reads the embedded files; they are checked by the subject's
// tests, so failing here is a broken build.
func shipped() subjects.Files {
	f, err := subjects.ShippedFiles(files, Dir)
	if err != nil {
		panic(err)
	}
	return f
}

// Catalog parses the shipped action catalog. It fails only if the embedded
// file is broken, which a test rules out.
func Catalog() (*actuators.Catalog, error) { return Subject().ActionCatalog() }

func observerFlags(fs *pflag.FlagSet) subjects.NewSource {
	var (
		pdURLs     []string
		promURL    string
		reqTimeout time.Duration
	)
	fs.StringSliceVar(&pdURLs, "pd", nil, "PD URLs (comma-separated), e.g. http://pd0:2379")
	fs.StringVar(&promURL, "prometheus", "", "Prometheus that scrapes the TiKV status ports (empty: no latency data)")
	fs.DurationVar(&reqTimeout, "request-timeout", pdapi.DefaultRequestTimeout, "timeout of one PD call or Prometheus query")
	return func(_ context.Context, log *slog.Logger) (observers.Source, func() error, error) {
		src, err := NewObserver(ObserverConfig{
			PD:         pdapi.Config{URLs: pdURLs, RequestTimeout: reqTimeout},
			Prometheus: tikvmetrics.Config{URL: promURL, Timeout: reqTimeout},
		})
		if err != nil {
			return nil, nil, err
		}
		log.Info("observing", "subject", Name, "pd", strings.Join(pdURLs, ","), "prometheus", promURL)
		return src, nil, nil
	}
}

func pdURLFlag(fs *pflag.FlagSet, what string) *[]string {
	var pdURLs []string
	fs.StringSliceVar(&pdURLs, "pd-url", nil, "PD URLs of the TiKV cluster (comma-separated; any member can "+what+")")
	return &pdURLs
}

func apiFlags(fs *pflag.FlagSet) subjects.NewGetter {
	urls := pdURLFlag(fs, "answer")
	return func() (diagnosis.Getter, error) {
		if len(*urls) == 0 {
			return nil, nil
		}
		return &diagnosis.HTTPGetter{URLs: *urls, Client: &http.Client{}}, nil
	}
}

func executorFlags(fs *pflag.FlagSet) subjects.NewExecutor {
	urls := pdURLFlag(fs, "act")
	return func() (actuators.Executor, error) {
		pdURLs := *urls
		if len(pdURLs) == 0 {
			return nil, fmt.Errorf("%w: TiKV needs --pd-url", subjects.ErrNotConfigured)
		}
		pd, err := pdapi.New(pdapi.Config{URLs: pdURLs})
		if err != nil {
			return nil, fmt.Errorf("--pd-url: %w", err)
		}
		return NewExecutor(pd)
	}
}

func localFlags(fs *pflag.FlagSet) subjects.StartLocal {
	var (
		pdURLs  []string
		promURL string
	)
	fs.StringSliceVar(&pdURLs, "pd", nil, "also observe and repair a TiKV cluster through these PD URLs (see docs/tikv.md)")
	fs.StringVar(&promURL, "prometheus", "", "the Prometheus that scrapes the TiKV stores (with --pd)")
	return func(_ context.Context, _ subjects.Env) (*subjects.Deployment, error) {
		if len(pdURLs) == 0 {
			return nil, nil
		}
		return Deployment(DeploymentConfig{Instance: DefaultLocalInstance, PD: pdapi.Config{URLs: pdURLs},
			Prometheus: tikvmetrics.Config{URL: promURL}})
	}
}

// DeploymentConfig describes a TiKV cluster for a pipeline to watch and act
// on.
type DeploymentConfig struct {
	Instance   string
	Interval   time.Duration // 0: DefaultInterval
	PD         pdapi.Config
	Prometheus tikvmetrics.Config
	// Now is the observer's clock (nil: time.Now); tests that drive a fake
	// PD's clock set it.
	Now func() time.Time
}

// Deployment returns a deployment of the cluster cfg reaches: an observer
// and an executor over PD.
func Deployment(cfg DeploymentConfig) (*subjects.Deployment, error) {
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	src, err := NewObserver(ObserverConfig{PD: cfg.PD, Prometheus: cfg.Prometheus, Now: cfg.Now})
	if err != nil {
		return nil, err
	}
	pd, err := pdapi.New(cfg.PD)
	if err != nil {
		return nil, err
	}
	exec, err := NewExecutor(pd)
	if err != nil {
		return nil, err
	}
	d := &subjects.Deployment{Subject: Subject(), Instance: cfg.Instance, Interval: cfg.Interval,
		Source: src, Executor: exec, API: &diagnosis.HTTPGetter{URLs: cfg.PD.URLs, Client: &http.Client{}},
		Endpoints: []string{"PD     " + strings.Join(cfg.PD.URLs, ",")}}
	if cfg.Prometheus.URL != "" {
		d.Prometheus = &diagnosis.PrometheusClient{URL: cfg.Prometheus.URL}
		d.Endpoints = append(d.Endpoints, "Prometheus (TiKV)  "+cfg.Prometheus.URL)
	}
	return d, nil
}
