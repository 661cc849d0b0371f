package ratelimiter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// NodeStopTimeout bounds how long [Node.Stop] waits for a node to exit.
const NodeStopTimeout = 10 * time.Second

// NodeConfig configures a node started by [StartNode].
type NodeConfig struct {
	// Listen is the host:port to serve on ("127.0.0.1:0" picks a port).
	Listen   string
	RedisURL string
	// Token protects the management API's mutating endpoints; empty means
	// no auth.
	Token string
	// Limiter is the node's configuration. An empty Advertise becomes the
	// listen address, with the host name in place of a wildcard address.
	// Registerer is replaced by Registry.
	Limiter Config
	// Registry receives the node's metrics and is served on its /metrics.
	// Nil means a fresh registry, so nodes in one process never share one.
	Registry *prometheus.Registry
}

// A Node is one running rate limiter node: its limiter (heartbeats, limit
// sync) and its HTTP server, on their own Redis client. `operator ratelimiter
// serve` runs one; the one-process pipeline runs several.
type Node struct {
	ID   string
	URL  string // the advertised base URL
	Addr string // the host:port it listens on, reused by Restart

	cfg    NodeConfig
	lim    *Limiter
	cancel context.CancelFunc
	done   chan struct{}
	err    error // set before done is closed

	stopOnce sync.Once
	stopErr  error
}

// StartNode listens, connects to Redis and starts serving in the
// background; [Node.Stop] stops it. The node outlives ctx's cancellation
// only in that Stop, not ctx, ends it; ctx's values are kept.
func StartNode(ctx context.Context, cfg NodeConfig) (*Node, error) {
	lc := cfg.Limiter
	if lc.Logger == nil {
		lc.Logger = slog.New(slog.DiscardHandler)
	}
	rdb, err := NewRedisClient(cfg.RedisURL, lc.RedisTimeout)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("node %s: listen: %w", lc.NodeID, err)
	}
	addr := ln.Addr().String()
	if lc.Advertise == "" {
		lc.Advertise = advertiseURL(ln.Addr())
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	lc.Registerer = reg
	lim, err := New(rdb, lc)
	if err != nil {
		_ = ln.Close()
		_ = rdb.Close()
		return nil, fmt.Errorf("node %s: %w", lc.NodeID, err)
	}
	h := NewHandler(lim, HandlerOptions{Token: cfg.Token, Gatherer: reg})
	nctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n := &Node{ID: lc.NodeID, URL: lc.Advertise, Addr: addr, cfg: cfg, lim: lim, cancel: cancel, done: make(chan struct{})}
	serveErr := make(chan error, 1)
	runErr := make(chan error, 1)
	go func() {
		err := Serve(nctx, ln, h)
		cancel() // a server that failed takes the limiter down with it
		serveErr <- err
	}()
	go func() { runErr <- lim.Run(nctx) }()
	go func() {
		err := errors.Join(<-serveErr, <-runErr)
		lim.Close()
		n.err = errors.Join(err, closeRedis(rdb))
		close(n.done)
	}()
	return n, nil
}

func closeRedis(rdb *redis.Client) error {
	if err := rdb.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
		return fmt.Errorf("close redis: %w", err)
	}
	return nil
}

// Done is closed once the node has exited, after Stop or because its
// server failed; Err then tells why.
func (n *Node) Done() <-chan struct{} { return n.done }

// Err returns the error the node exited with; nil while it runs or after a
// clean stop.
func (n *Node) Err() error {
	select {
	case <-n.done:
		return n.err
	default:
		return nil
	}
}

// Stop stops serving and heartbeating and waits up to NodeStopTimeout for
// the node to exit. It is safe to call more than once.
func (n *Node) Stop() error {
	n.stopOnce.Do(func() {
		n.cancel()
		select {
		case <-n.done:
			n.stopErr = n.err
		case <-time.After(NodeStopTimeout):
			n.stopErr = fmt.Errorf("node %s did not stop within %s", n.ID, NodeStopTimeout)
		}
	})
	return n.stopErr
}

// Restart starts a stopped node again on the same address, with a fresh
// metrics registry.
func (n *Node) Restart(ctx context.Context) (*Node, error) {
	cfg := n.cfg
	cfg.Listen = n.Addr
	cfg.Registry = nil
	return StartNode(ctx, cfg)
}

// Limiter returns the node's limiter, for in-process fault injection.
func (n *Node) Limiter() *Limiter { return n.lim }

// advertiseURL is the default advertised URL: the listen address, with the
// host name in place of a wildcard address.
func advertiseURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return "http://" + net.JoinHostPort(host, port)
}
