package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/operator-dev/operator/actuators"
	actratelimiter "github.com/operator-dev/operator/actuators/ratelimiter"
	acttikv "github.com/operator-dev/operator/actuators/tikv"
	"github.com/operator-dev/operator/evaluators"
	"github.com/operator-dev/operator/internal/bus"
	"github.com/operator-dev/operator/internal/pdapi"
	"github.com/operator-dev/operator/internal/tikvmetrics"
	"github.com/operator-dev/operator/observers"
	rlobs "github.com/operator-dev/operator/observers/ratelimiter"
	obstikv "github.com/operator-dev/operator/observers/tikv"
	"github.com/operator-dev/operator/ratelimiter"
	"github.com/operator-dev/operator/ratelimiter/client"
	"github.com/operator-dev/operator/schemas"
)

// Defaults for Config.
const (
	DefaultNodes    = 3
	DefaultInstance = "demo"
	DefaultInterval = time.Second
)

// Config describes a whole pipeline in one process.
type Config struct {
	// Store is the directory for the embedded JetStream store; empty means
	// a temporary directory.
	Store string
	// NATSListen is where the embedded NATS listens for other processes
	// ("" for in-process only).
	NATSListen string
	// NATSURL uses an external NATS server instead of the embedded one.
	NATSURL string
	// Bus adjusts the bus configuration (prefix, replicas, credentials).
	Bus bus.Config
	// RedisURL uses a real Redis; empty starts an embedded
	// Redis-compatible store on a loopback port.
	RedisURL string
	// RedisProcess, when set, stops and starts the Redis at RedisURL for
	// fault injection (tests that own a redis-server process).
	RedisProcess RedisProcess
	// Nodes is the number of rate limiter nodes (0: DefaultNodes).
	Nodes int
	// NodeListen is the host:port of the first node; the others take the
	// following ports. Empty picks free loopback ports.
	NodeListen string
	// Limiter configures every node (defaults, clock, failure mode).
	Limiter ratelimiter.Config
	// Token protects the nodes' management API.
	Token string
	// Instance names the rate limiter deployment in subjects.
	Instance string
	// Interval is the observers' poll interval.
	Interval time.Duration
	// Evaluator configures the rule engine.
	Evaluator evaluators.Config
	// Actuator configures the actuator; its Mode defaults to execute here,
	// since the stack owns its sandbox.
	Actuator actuators.Config
	// RuleFiles replace the shipped rule sets when given.
	RuleFiles []string
	// Registerer receives the pipeline's metrics (bus, observers,
	// evaluator, actuator); nil registers nothing. The nodes keep their own
	// registries, served on their /metrics.
	Registerer prometheus.Registerer
	// PDURLs, when set, add the TiKV subject: its observer (instance
	// TiKVInstance), rules and actions, against these PD endpoints.
	PDURLs []string
	// PrometheusURL is the Prometheus that scrapes the TiKV stores.
	PrometheusURL string
	// TiKVInstance names the TiKV cluster in subjects (default "tikv").
	TiKVInstance string
	// TiKVInterval is the TiKV observer's poll interval (default 10s: PD
	// and Prometheus change slower than the limiter).
	TiKVInterval time.Duration
	Logger       *slog.Logger
}

// A Stack is a running pipeline: bus, Redis, nodes, observer, evaluator.
type Stack struct {
	cfg Config
	log *slog.Logger

	Bus      *bus.Bus
	RedisURL string
	mini     *miniredis.Miniredis
	redis    *redis.Client // the observer's own client

	mu    sync.Mutex
	nodes []*Node

	// stopClock ends the embedded store's clock (see runStoreClock).
	stopClock func()
}

// Start opens the bus, starts Redis (unless external) and the nodes. Run
// then runs the pipeline; Close releases everything.
func Start(ctx context.Context, cfg Config) (_ *Stack, err error) {
	if cfg.Nodes == 0 {
		cfg.Nodes = DefaultNodes
	}
	if cfg.Instance == "" {
		cfg.Instance = DefaultInstance
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.TiKVInstance == "" {
		cfg.TiKVInstance = "tikv"
	}
	if cfg.TiKVInterval == 0 {
		cfg.TiKVInterval = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := schemas.ValidToken(cfg.Instance); err != nil {
		return nil, fmt.Errorf("instance: %w", err)
	}
	s := &Stack{cfg: cfg, log: cfg.Logger}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()

	bc := cfg.Bus
	bc.Logger = cfg.Logger
	bc.Registerer = cfg.Registerer
	bc.Name = "operator-up"
	bc.URL = cfg.NATSURL
	if cfg.NATSURL == "" {
		store := cfg.Store
		if store != "" {
			store = filepath.Join(store, "nats")
		}
		bc.Embedded = bus.EmbeddedConfig{StoreDir: store, Listen: cfg.NATSListen}
	}
	s.Bus, err = bus.Open(ctx, bc)
	if err != nil {
		return nil, err
	}
	if err := s.Bus.Declare(ctx); err != nil {
		return nil, err
	}

	s.RedisURL = cfg.RedisURL
	if s.RedisURL == "" {
		s.mini = miniredis.NewMiniRedis()
		if err := s.mini.StartAddr("127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("embedded redis: %w", err)
		}
		s.RedisURL = "redis://" + s.mini.Addr()
		cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		go func() { defer close(done); runStoreClock(cctx, s.mini) }()
		s.stopClock = func() { cancel(); <-done }
	}
	s.redis, err = ratelimiter.NewRedisClient(s.RedisURL, time.Second)
	if err != nil {
		return nil, err
	}

	for i := range cfg.Nodes {
		listen := "127.0.0.1:0"
		if cfg.NodeListen != "" {
			listen, err = nthPort(cfg.NodeListen, i)
			if err != nil {
				return nil, err
			}
		}
		n, err := StartNode(ctx, NodeConfig{ID: fmt.Sprintf("n%d", i+1), Listen: listen, RedisURL: s.RedisURL,
			Token: cfg.Token, Limiter: cfg.Limiter, Logger: cfg.Logger})
		if err != nil {
			return nil, err
		}
		s.nodes = append(s.nodes, n)
	}
	return s, nil
}

// Nodes returns the running and stopped nodes, in start order.
func (s *Stack) Nodes() []*Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Node(nil), s.nodes...)
}

// NodeURLs returns the nodes' base URLs.
func (s *Stack) NodeURLs() []string {
	var out []string
	for _, n := range s.Nodes() {
		out = append(out, n.URL)
	}
	return out
}

// AdminRedis is a client of the limiter's Redis for fault injection and
// inspection; the stack closes it.
func (s *Stack) AdminRedis() *redis.Client { return s.redis }

// Instance is the rate limiter instance name in subjects.
func (s *Stack) Instance() string { return s.cfg.Instance }

// RuleSets loads the configured rule files, or the shipped rate limiter
// rule set.
func (s *Stack) RuleSets() ([]*evaluators.RuleSet, error) {
	if len(s.cfg.RuleFiles) > 0 {
		return evaluators.LoadRuleSets(evaluators.LoadOptions{}, s.cfg.RuleFiles...)
	}
	rs, err := evaluators.ParseRuleSet(rlobs.RulesFile, rlobs.Rules(), evaluators.LoadOptions{})
	if err != nil {
		return nil, err
	}
	sets := []*evaluators.RuleSet{rs}
	if len(s.cfg.PDURLs) > 0 {
		ts, err := evaluators.ParseRuleSet(obstikv.RulesFile, obstikv.Rules(), evaluators.LoadOptions{})
		if err != nil {
			return nil, err
		}
		sets = append(sets, ts)
	}
	return sets, nil
}

// Run runs the observer and the evaluator until ctx is done.
func (s *Stack) Run(ctx context.Context) error {
	sets, err := s.RuleSets()
	if err != nil {
		return err
	}
	src, err := rlobs.New(rlobs.Config{Nodes: s.NodeURLs(), Token: s.cfg.Token, Redis: s.redis})
	if err != nil {
		return err
	}
	ec := s.cfg.Evaluator
	if ec.Logger == nil {
		ec.Logger = s.log.With("component", "evaluator")
	}
	if ec.Registerer == nil {
		ec.Registerer = s.cfg.Registerer
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return RunObserver(gctx, s.Bus, observers.Config{Subject: "ratelimiter", Instance: s.cfg.Instance,
			Interval: s.cfg.Interval, Logger: s.log.With("component", "observer"), Registerer: s.observerRegisterer("ratelimiter")}, src)
	})
	if len(s.cfg.PDURLs) > 0 {
		tsrc, err := obstikv.New(obstikv.Config{PD: pdapi.Config{URLs: s.cfg.PDURLs}, Prometheus: tikvmetrics.Config{URL: s.cfg.PrometheusURL}})
		if err != nil {
			return err
		}
		g.Go(func() error {
			return RunObserver(gctx, s.Bus, observers.Config{Subject: obstikv.Subject, Instance: s.cfg.TiKVInstance,
				Interval: s.cfg.TiKVInterval, Logger: s.log.With("component", "observer-tikv"), Registerer: s.observerRegisterer(obstikv.Subject)}, tsrc)
		})
	}
	g.Go(func() error { return RunEvaluator(gctx, s.Bus, sets, ec, 1) })
	subjects, err := s.actuatorSubjects()
	if err != nil {
		return err
	}
	ac := s.cfg.Actuator
	if ac.Mode == "" {
		ac.Mode = schemas.ModeExecute
	}
	if ac.Logger == nil {
		ac.Logger = s.log.With("component", "actuator")
	}
	if ac.Registerer == nil {
		ac.Registerer = s.cfg.Registerer
	}
	ac.SubjectPrefix = s.Bus.Subjects().Prefix
	g.Go(func() error { return RunActuator(gctx, s.Bus, ac, subjects) })
	return g.Wait()
}

// observerRegisterer labels one observer's metrics with its subject, so the
// observers of both subjects share one registry.
func (s *Stack) observerRegisterer(subject string) prometheus.Registerer {
	if s.cfg.Registerer == nil {
		return nil
	}
	return prometheus.WrapRegistererWith(prometheus.Labels{"observer": subject}, s.cfg.Registerer)
}

func (s *Stack) actuatorSubjects() (map[string]actuators.Subject, error) {
	cat, err := actratelimiter.Catalog()
	if err != nil {
		return nil, err
	}
	var clients []*client.Client
	hc := &http.Client{}
	for _, u := range s.NodeURLs() {
		c, err := client.New(u, hc)
		if err != nil {
			return nil, err
		}
		clients = append(clients, c.WithToken(s.cfg.Token))
	}
	exec, err := actratelimiter.NewExecutor(clients...)
	if err != nil {
		return nil, err
	}
	subjects := map[string]actuators.Subject{actratelimiter.Name: {Catalog: cat, Executor: exec}}
	if len(s.cfg.PDURLs) > 0 {
		pd, err := pdapi.New(pdapi.Config{URLs: s.cfg.PDURLs})
		if err != nil {
			return nil, err
		}
		if subjects[acttikv.Name], err = acttikv.Subject(pd); err != nil {
			return nil, err
		}
	}
	return subjects, nil
}

// Approve approves a request awaiting approval, as `operator approve` does.
func (s *Stack) Approve(ctx context.Context, requestID, by string) error {
	control, err := ControlStore(ctx, s.Bus, schemas.BucketControl)
	if err != nil {
		return err
	}
	_, err = actuators.Decide(ctx, control, s.Bus, s.Bus.Subjects(), requestID,
		actuators.Decision{Approve: true, By: by, Reason: "approved by " + by, Source: "/cli/" + by}, time.Now())
	return err
}

// KillNode stops node id (it stops heartbeating and serving).
func (s *Stack) KillNode(id string) error {
	n := s.node(id)
	if n == nil {
		return fmt.Errorf("no node %q", id)
	}
	return n.Stop()
}

// RestartNode starts a stopped node again on its address.
func (s *Stack) RestartNode(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, n := range s.nodes {
		if n.ID == id {
			_ = n.Stop()
			nn, err := n.Restart(ctx)
			if err != nil {
				return err
			}
			s.nodes[i] = nn
			return nil
		}
	}
	return fmt.Errorf("no node %q", id)
}

func (s *Stack) node(id string) *Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// RedisProcess stops and starts a Redis server this process owns.
type RedisProcess interface {
	Stop() error
	Start() error
}

// ErrExternalRedis is returned by fault injections that need the embedded
// store.
var ErrExternalRedis = errors.New("only the embedded Redis can be stopped from here; use CLIENT PAUSE on a real one")

// StopRedis stops the embedded Redis; StartRedis brings it back on the
// same address with its data.
func (s *Stack) StopRedis() error {
	if s.cfg.RedisProcess != nil {
		return s.cfg.RedisProcess.Stop()
	}
	if s.mini == nil {
		return ErrExternalRedis
	}
	s.mini.Close()
	return nil
}

// StartRedis restarts the embedded Redis after StopRedis.
func (s *Stack) StartRedis() error {
	if s.cfg.RedisProcess != nil {
		return s.cfg.RedisProcess.Start()
	}
	if s.mini == nil {
		return ErrExternalRedis
	}
	return s.mini.Restart()
}

// Close stops the nodes, Redis and the bus.
func (s *Stack) Close() error {
	var errs []error
	for _, n := range s.Nodes() {
		errs = append(errs, n.Stop())
	}
	if s.redis != nil {
		errs = append(errs, s.redis.Close())
	}
	if s.stopClock != nil {
		s.stopClock()
	}
	if s.mini != nil {
		s.mini.Close()
	}
	if s.Bus != nil {
		errs = append(errs, s.Bus.Close())
	}
	return errors.Join(errs...)
}

// runStoreClock makes the embedded store's TTLs run down with real time:
// miniredis only expires keys when fast-forwarded.
func runStoreClock(ctx context.Context, m *miniredis.Miniredis) {
	const step = 250 * time.Millisecond
	tick := time.NewTicker(step)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			m.FastForward(now.Sub(last))
			last = now
		}
	}
}
