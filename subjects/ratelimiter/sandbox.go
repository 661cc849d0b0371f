package ratelimiter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/operator-dev/operator/ratelimiter"
	"github.com/operator-dev/operator/schemas"
	"github.com/operator-dev/operator/subjects"
)

// DefaultSandboxNodes is how many nodes a sandbox runs by default.
const DefaultSandboxNodes = 3

// SandboxConfig describes a rate limiter deployment run in this process.
type SandboxConfig struct {
	// RedisURL uses a real Redis; empty starts an embedded Redis-compatible
	// store on a loopback port, which the nodes reach with their normal
	// client.
	RedisURL string
	// RedisProcess, when set, stops and starts the Redis at RedisURL for
	// fault injection (tests that own a redis-server process).
	RedisProcess RedisProcess
	// Nodes is the number of nodes (0: DefaultSandboxNodes).
	Nodes int
	// NodeListen is the host:port of the first node; the others take the
	// following ports. Empty picks free loopback ports.
	NodeListen string
	// Token protects the nodes' management API.
	Token string
	// Limiter configures every node; NodeID, Advertise and Logger are
	// filled in.
	Limiter ratelimiter.Config
	Logger  *slog.Logger
}

// RedisProcess stops and starts a Redis server this process owns.
type RedisProcess interface {
	Stop() error
	Start() error
}

// A Sandbox is a rate limiter deployment running in this process: Redis
// (embedded unless given) and nodes on loopback ports, each exactly as
// `operator ratelimiter serve` runs one. Faults can be injected into it
// from here: a node killed and restarted, Redis stopped and started.
type Sandbox struct {
	cfg      SandboxConfig
	RedisURL string
	mini     *miniredis.Miniredis
	redis    *redis.Client // the observer's and fault injector's own client

	mu    sync.Mutex
	nodes []*ratelimiter.Node

	// stopClock ends the embedded store's clock (see runStoreClock).
	stopClock func()

	closeOnce sync.Once
	closeErr  error
}

// StartSandbox starts Redis (unless external) and the nodes; Close stops
// them.
func StartSandbox(ctx context.Context, cfg SandboxConfig) (_ *Sandbox, err error) {
	if cfg.Nodes == 0 {
		cfg.Nodes = DefaultSandboxNodes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Sandbox{cfg: cfg, RedisURL: cfg.RedisURL}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	if s.RedisURL == "" {
		s.mini = miniredis.NewMiniRedis()
		if err := s.mini.StartAddr("127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("embedded redis: %w", err)
		}
		s.RedisURL = "redis://" + s.mini.Addr()
		cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		mini := s.mini
		go func() { defer close(done); runStoreClock(cctx, mini) }()
		s.stopClock = func() { cancel(); <-done }
	}
	if s.redis, err = ratelimiter.NewRedisClient(s.RedisURL, time.Second); err != nil {
		return nil, err
	}
	for i := range cfg.Nodes {
		listen := "127.0.0.1:0"
		if cfg.NodeListen != "" {
			if listen, err = nthPort(cfg.NodeListen, i); err != nil {
				return nil, err
			}
		}
		lc := cfg.Limiter
		lc.NodeID = fmt.Sprintf("n%d", i+1)
		lc.Advertise = ""
		lc.Logger = cfg.Logger.With("component", "ratelimiter", "node", lc.NodeID)
		n, err := ratelimiter.StartNode(ctx, ratelimiter.NodeConfig{Listen: listen, RedisURL: s.RedisURL, Token: cfg.Token, Limiter: lc})
		if err != nil {
			return nil, err
		}
		s.nodes = append(s.nodes, n)
	}
	return s, nil
}

// Deployment hands the sandbox to a pipeline as the instance it watches,
// with an observer and an executor over every node. The deployment's Close
// closes the sandbox.
func (s *Sandbox) Deployment(instance string, interval time.Duration) (*subjects.Deployment, error) {
	if err := schemas.ValidToken(instance); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("instance: %w", err)
	}
	urls := s.NodeURLs()
	src, err := NewObserver(ObserverConfig{Nodes: urls, Token: s.cfg.Token, Redis: s.redis})
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	exec, err := executorFor(urls, s.cfg.Token)
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	eps := []string{"Redis  " + s.RedisURL}
	for _, n := range s.Nodes() {
		eps = append(eps, fmt.Sprintf("node %s  %s   (try: curl -XPOST %s/v1/check -d '{\"key\":\"user:1\"}')", n.ID, n.URL, n.URL))
	}
	return &subjects.Deployment{Subject: Subject(), Instance: instance, Interval: interval,
		Source: src, Executor: exec, API: apiGetter(urls, s.cfg.Token), Endpoints: eps, Close: s.Close}, nil
}

// Nodes returns the running and stopped nodes, in start order.
func (s *Sandbox) Nodes() []*ratelimiter.Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*ratelimiter.Node(nil), s.nodes...)
}

// NodeURLs returns the nodes' base URLs.
func (s *Sandbox) NodeURLs() []string {
	var out []string
	for _, n := range s.Nodes() {
		out = append(out, n.URL)
	}
	return out
}

// Token is the nodes' management token.
func (s *Sandbox) Token() string { return s.cfg.Token }

// AdminRedis is a client of the limiter's Redis for fault injection and
// inspection; the sandbox closes it.
func (s *Sandbox) AdminRedis() *redis.Client { return s.redis }

// KillNode stops node id: it stops heartbeating and serving.
func (s *Sandbox) KillNode(id string) error {
	n := s.node(id)
	if n == nil {
		return fmt.Errorf("no node %q", id)
	}
	return n.Stop()
}

// RestartNode starts a stopped node again on its address.
func (s *Sandbox) RestartNode(ctx context.Context, id string) error {
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

func (s *Sandbox) node(id string) *ratelimiter.Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// ErrExternalRedis is returned by fault injections that need the embedded
// store or a Redis process this one owns.
var ErrExternalRedis = errors.New("only the embedded Redis can be stopped from here; use CLIENT PAUSE on a real one")

// StopRedis stops Redis; StartRedis brings it back on the same address
// with its data.
func (s *Sandbox) StopRedis() error {
	if s.cfg.RedisProcess != nil {
		return s.cfg.RedisProcess.Stop()
	}
	if s.mini == nil {
		return ErrExternalRedis
	}
	s.mini.Close()
	return nil
}

// StartRedis restarts Redis after StopRedis.
func (s *Sandbox) StartRedis() error {
	if s.cfg.RedisProcess != nil {
		return s.cfg.RedisProcess.Start()
	}
	if s.mini == nil {
		return ErrExternalRedis
	}
	return s.mini.Restart()
}

// Close stops the nodes and Redis. It is safe to call more than once.
func (s *Sandbox) Close() error {
	s.closeOnce.Do(func() {
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
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
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

// nthPort returns host:(port+n) for a host:port; port 0 stays 0.
func nthPort(hostport string, n int) (string, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", fmt.Errorf("listen address %q: %w", hostport, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return "", fmt.Errorf("listen address %q: %w", hostport, err)
	}
	if p == 0 {
		return hostport, nil
	}
	return net.JoinHostPort(host, strconv.Itoa(p+n)), nil
}
