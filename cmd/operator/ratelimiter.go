package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/operator-dev/operator/ratelimiter"
)

// ratelimiterServeFlags configure `operator ratelimiter serve`.
type ratelimiterServeFlags struct {
	listen           string
	redisURL         string
	nodeID           string
	advertise        string
	token            string
	defaultLimit     int64
	defaultWindow    time.Duration
	defaultAlgorithm string
	onRedisError     string
	clock            string
	redisTimeout     time.Duration
	syncInterval     time.Duration
	nodeDownAfter    time.Duration
	enableChaos      bool
	overLimitCache   int
	pprofListen      string
}

func newRatelimiterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ratelimiter",
		Short: "Run the rate limiter subject, a multi-node Redis-backed rate limiting service",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newRatelimiterServeCmd())
	return cmd
}

func newRatelimiterServeCmd() *cobra.Command {
	var f ratelimiterServeFlags
	cmd := &cobra.Command{
		Use:   "serve --redis URL --node-id ID",
		Short: "Serve one rate limiter node: POST /v1/check, the /api/v1 management API and /metrics",
		Long: `Serve one rate limiter node. Nodes share nothing but Redis: run several with
the same --redis and distinct --node-id. Each decision is one atomic Lua
script; limits set through PUT /api/v1/limits/{pattern} reach every node
within a second.`,
		Example: `  operator ratelimiter serve --listen 127.0.0.1:8081 --redis redis://127.0.0.1:6379/0 --node-id n1
  operator ratelimiter serve --node-id n2 --token s3cret --on-redis-error open --default-algorithm gcra`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRatelimiterServe(cmd.Context(), f)
		},
	}
	host, _ := os.Hostname()
	fs := cmd.Flags()
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8080", "HTTP listen address")
	fs.StringVar(&f.redisURL, "redis", "redis://127.0.0.1:6379/0", "Redis URL shared by every node")
	fs.StringVar(&f.nodeID, "node-id", host, "this node's id in the registry and metrics")
	fs.StringVar(&f.advertise, "advertise", "", "base URL other parties reach this node at (default: http://<listen address>)")
	fs.StringVar(&f.token, "token", "", "bearer token required by mutating management requests (empty: no auth)")
	fs.Int64Var(&f.defaultLimit, "default-limit", ratelimiter.DefaultLimit, "limit for keys no configured pattern matches")
	fs.DurationVar(&f.defaultWindow, "default-window", ratelimiter.DefaultWindow, "window of the default limit")
	fs.StringVar(&f.defaultAlgorithm, "default-algorithm", string(ratelimiter.DefaultAlgorithm), "algorithm of the default limit: sliding_window_log, sliding_window_counter, fixed_window or gcra")
	fs.StringVar(&f.onRedisError, "on-redis-error", string(ratelimiter.DefaultOnRedisError), "when Redis fails: open (allow, marked degraded) or closed (503)")
	fs.StringVar(&f.clock, "clock", string(ratelimiter.DefaultClock), "decision clock: redis (TIME on the server) or node (this process, with chaos skew)")
	fs.DurationVar(&f.redisTimeout, "redis-timeout", ratelimiter.DefaultRedisTimeout, "bound on every Redis call")
	fs.DurationVar(&f.syncInterval, "sync-interval", ratelimiter.DefaultSyncInterval, "heartbeat and limit poll interval (at most 1s)")
	fs.DurationVar(&f.nodeDownAfter, "node-down-after", ratelimiter.DefaultNodeDownAfter, "heartbeat age after which a node is listed down")
	fs.BoolVar(&f.enableChaos, "enable-chaos", false, "serve POST/DELETE /api/v1/chaos (clock skew, Redis delay)")
	fs.StringVar(&f.pprofListen, "pprof-listen", "", "serve Go's profiler (/debug/pprof/) on this address, e.g. 127.0.0.1:6060 (empty: off; never expose it)")
	fs.IntVar(&f.overLimitCache, "over-limit-cache", ratelimiter.DefaultOverLimitCache, "keys known to be over their limit this node denies without asking Redis, while certain (0: off; never with --clock node)")
	return cmd
}

func runRatelimiterServe(ctx context.Context, f ratelimiterServeFlags) error {
	log := slog.Default().With("component", "ratelimiter")
	cfg := ratelimiter.Config{
		NodeID:           f.nodeID,
		Advertise:        f.advertise,
		Version:          buildVersion(),
		DefaultLimit:     f.defaultLimit,
		DefaultWindow:    f.defaultWindow,
		DefaultAlgorithm: ratelimiter.Algorithm(f.defaultAlgorithm),
		OnRedisError:     ratelimiter.FailureMode(f.onRedisError),
		Clock:            ratelimiter.ClockSource(f.clock),
		RedisTimeout:     f.redisTimeout,
		SyncInterval:     f.syncInterval,
		NodeDownAfter:    f.nodeDownAfter,
		EnableChaos:      f.enableChaos,
		OverLimitCache:   cmp.Or(f.overLimitCache, -1), // the flag's 0 turns it off
		Logger:           log,
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	n, err := ratelimiter.StartNode(ctx, ratelimiter.NodeConfig{Listen: f.listen, RedisURL: f.redisURL, Token: f.token, Limiter: cfg, Registry: reg})
	if err != nil {
		return err
	}
	log.Info("rate limiter node started", "node", n.ID, "listen", n.Addr, "advertise", n.URL,
		"redis", redactURL(f.redisURL), "clock", cfg.Clock, "on_redis_error", cfg.OnRedisError, "auth", f.token != "", "chaos", f.enableChaos)
	if f.pprofListen != "" {
		stop, err := servePprof(ctx, f.pprofListen, log)
		if err != nil {
			_ = n.Stop()
			return err
		}
		defer stop()
	}
	select {
	case <-ctx.Done():
		return n.Stop()
	case <-n.Done():
		return n.Err()
	}
}

// redactURL hides a password in a Redis URL for logs.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable url)"
	}
	return u.Redacted()
}

// servePprof serves Go's profiler on addr until the returned stop is
// called: how the node's CPU per decision is profiled under load.
func servePprof(ctx context.Context, addr string, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof-listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Warn("pprof server stopped", "error", err)
		}
	}()
	log.Info("profiler listening", "address", ln.Addr().String())
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-done
	}, nil
}
