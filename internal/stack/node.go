package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/operator-dev/operator/ratelimiter"
)

// NodeConfig configures one in-process rate limiter node.
type NodeConfig struct {
	ID string
	// Listen is the host:port to serve on ("127.0.0.1:0" picks a port).
	Listen   string
	RedisURL string
	Token    string
	// Limiter is the rest of the node's configuration; NodeID, Advertise,
	// Logger and Registerer are filled in.
	Limiter ratelimiter.Config
	Logger  *slog.Logger
}

// A Node is a rate limiter node running in this process, serving HTTP on a
// loopback port with its own metrics registry, exactly as `operator
// ratelimiter serve` runs one.
type Node struct {
	ID   string
	URL  string
	Addr string // host:port it listens on, reused by a restart

	cfg    NodeConfig
	lim    *ratelimiter.Limiter
	rdb    *redis.Client
	cancel context.CancelFunc
	done   chan error

	stopOnce sync.Once
	stopErr  error
}

// StartNode starts a node; Stop stops it.
func StartNode(ctx context.Context, cfg NodeConfig) (*Node, error) {
	lc := cfg.Limiter
	lc.NodeID = cfg.ID
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	lc.Logger = cfg.Logger.With("component", "ratelimiter")
	timeout := lc.RedisTimeout
	if timeout == 0 {
		timeout = ratelimiter.DefaultRedisTimeout
	}
	rdb, err := ratelimiter.NewRedisClient(cfg.RedisURL, timeout)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("node %s: listen: %w", cfg.ID, err)
	}
	addr := ln.Addr().String()
	lc.Advertise = "http://" + addr
	reg := prometheus.NewRegistry()
	lc.Registerer = reg
	lim, err := ratelimiter.New(rdb, lc)
	if err != nil {
		_ = ln.Close()
		_ = rdb.Close()
		return nil, fmt.Errorf("node %s: %w", cfg.ID, err)
	}
	h := ratelimiter.NewHandler(lim, ratelimiter.HandlerOptions{Token: cfg.Token, Gatherer: reg})
	nctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n := &Node{ID: cfg.ID, URL: lc.Advertise, Addr: addr, cfg: cfg, lim: lim, rdb: rdb, cancel: cancel, done: make(chan error, 1)}
	serveErr := make(chan error, 1)
	runErr := make(chan error, 1)
	go func() { serveErr <- ratelimiter.Serve(nctx, ln, h) }()
	go func() { runErr <- lim.Run(nctx) }()
	go func() {
		err := errors.Join(<-serveErr, <-runErr)
		_ = rdb.Close()
		n.done <- err
	}()
	return n, nil
}

// Stop stops serving and heartbeating and waits for the node to exit.
// It is safe to call more than once.
func (n *Node) Stop() error {
	n.stopOnce.Do(func() {
		n.cancel()
		select {
		case n.stopErr = <-n.done:
		case <-time.After(10 * time.Second):
			n.stopErr = fmt.Errorf("node %s did not stop within 10s", n.ID)
		}
	})
	return n.stopErr
}

// Restart starts a stopped node again on the same address.
func (n *Node) Restart(ctx context.Context) (*Node, error) {
	cfg := n.cfg
	cfg.Listen = n.Addr
	return StartNode(ctx, cfg)
}

// Limiter returns the node's limiter, for in-process fault injection.
func (n *Node) Limiter() *ratelimiter.Limiter { return n.lim }
