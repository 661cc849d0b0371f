package ratelimiter

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
	"github.com/operator-dev/operator/ratelimiter"
	"github.com/operator-dev/operator/ratelimiter/client"
	"github.com/operator-dev/operator/subjects"
)

// Name is the subject's name: the token in NATS subjects, rule files and
// catalogs.
const Name = "ratelimiter"

// Defaults of the subject in `operator up`.
const (
	DefaultInstance = "demo"
	DefaultInterval = time.Second
)

//go:embed rules.yaml rules_test.yaml actions.yaml diagnosis.yaml
var files embed.FS

// Dir is the subject's folder in the repository, which messages name.
const Dir = "subjects/ratelimiter"

// Subject returns the rate limiter subject as it plugs into the pipeline.
func Subject() subjects.Subject {
	return subjects.Subject{
		Name:  Name,
		Title: "rate limiter deployment",
		Files: shipped(),
		Observer: subjects.Observer{
			Short: "Observe rate limiter nodes and their Redis",
			Long: `Poll the rate limiter every --interval: each node's registry entry, status,
/metrics (p99s from histogram deltas) and hot keys; the counters of hot and
limited keys as each node computes them; limits and blocks; and Redis itself
(PING latency, keys under ratelimit: without a TTL). Nodes are discovered
from --nodes and from the node registry. A node or source that cannot be read
is listed in the observation's observer.errors; the rest is still published.`,
			Example:         `  operator observe ratelimiter --instance prod --nodes http://10.0.0.1:8080,http://10.0.0.2:8080 --redis redis://10.0.0.9:6379/0`,
			DefaultInstance: DefaultInstance,
			DefaultInterval: DefaultInterval,
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
		nodes    []string
		redisURL string
		token    string
		maxKeys  int
	)
	fs.StringSliceVar(&nodes, "nodes", []string{"http://127.0.0.1:8080"}, "node base URLs (more are discovered from the registry)")
	fs.StringVar(&redisURL, "redis", "redis://127.0.0.1:6379/0", "the limiter's Redis, checked directly")
	fs.StringVar(&token, "token", "", "bearer token of the management API")
	fs.IntVar(&maxKeys, "max-keys", DefaultMaxKeys, "hot keys examined per poll")
	return func(_ context.Context, log *slog.Logger) (observers.Source, func() error, error) {
		rdb, err := ratelimiter.NewRedisClient(redisURL, time.Second)
		if err != nil {
			return nil, nil, err
		}
		src, err := NewObserver(ObserverConfig{Nodes: nodes, Token: token, MaxKeys: maxKeys, Redis: rdb})
		if err != nil {
			_ = rdb.Close()
			return nil, nil, err
		}
		log.Info("observing", "subject", Name, "nodes", strings.Join(nodes, ","))
		return src, rdb.Close, nil
	}
}

// endpoints are the flags that reach the nodes' management API.
type endpoints struct {
	urls  []string
	token string
}

func endpointFlags(fs *pflag.FlagSet, what string) *endpoints {
	var e endpoints
	fs.StringSliceVar(&e.urls, "ratelimiter-url", nil, "base URL of rate limiter nodes (comma-separated; any node can "+what+")")
	fs.StringVar(&e.token, "ratelimiter-token", "", "bearer token of the rate limiter's management API")
	return &e
}

func executorFlags(fs *pflag.FlagSet) subjects.NewExecutor {
	e := endpointFlags(fs, "act for all")
	return func() (actuators.Executor, error) {
		if len(e.urls) == 0 {
			return nil, fmt.Errorf("%w: the rate limiter needs --ratelimiter-url", subjects.ErrNotConfigured)
		}
		return executorFor(e.urls, e.token)
	}
}

func apiFlags(fs *pflag.FlagSet) subjects.NewGetter {
	e := endpointFlags(fs, "answer")
	return func() (diagnosis.Getter, error) {
		if len(e.urls) == 0 {
			return nil, nil
		}
		return apiGetter(e.urls, e.token), nil
	}
}

// apiGetter reads the management API of any node: every node serves the
// same shared state.
func apiGetter(urls []string, token string) *diagnosis.HTTPGetter {
	return &diagnosis.HTTPGetter{URLs: urls, Token: token, Client: &http.Client{}}
}

// executorFor returns an executor over the nodes at urls. The worker bounds
// every call with its own timeout, so the HTTP client sets none.
func executorFor(urls []string, token string) (*Executor, error) {
	hc := &http.Client{}
	var clients []*client.Client
	for _, u := range urls {
		c, err := client.New(strings.TrimSpace(u), hc)
		if err != nil {
			return nil, fmt.Errorf("rate limiter url: %w", err)
		}
		clients = append(clients, c.WithToken(token))
	}
	return NewExecutor(clients...)
}

func localFlags(fs *pflag.FlagSet) subjects.StartLocal {
	var (
		cfg      SandboxConfig
		clock    string
		instance string
		interval time.Duration
	)
	fs.StringVar(&cfg.RedisURL, "redis", "", "use this Redis instead of the embedded store (redis://host:port/db)")
	fs.IntVar(&cfg.Nodes, "nodes", DefaultSandboxNodes, "rate limiter nodes to run")
	fs.StringVar(&cfg.NodeListen, "node-listen", "127.0.0.1:8081", "address of the first node; the others take the next ports (port 0: any free port)")
	fs.StringVar(&instance, "instance", DefaultInstance, "name of the rate limiter deployment in subjects")
	fs.DurationVar(&interval, "interval", DefaultInterval, "observer poll interval")
	fs.StringVar(&cfg.Token, "token", "", "bearer token for the nodes' management API")
	fs.StringVar(&clock, "clock", string(ratelimiter.DefaultClock), "the nodes' decision clock: redis (TIME) or node (each node's own, so a chaos clock skew changes decisions)")
	return func(ctx context.Context, env subjects.Env) (*subjects.Deployment, error) {
		c := cfg
		c.Limiter = ratelimiter.Config{EnableChaos: true, Version: env.Version, Clock: ratelimiter.ClockSource(clock)}
		c.Logger = env.Logger
		sb, err := StartSandbox(ctx, c)
		if err != nil {
			return nil, err
		}
		return sb.Deployment(instance, interval)
	}
}
