package ratelimiter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server timeouts used by [Serve].
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 10 * time.Second
	WriteTimeout      = 10 * time.Second
	IdleTimeout       = 2 * time.Minute
	ShutdownTimeout   = 5 * time.Second
)

// Serve serves h on ln until ctx is done, then shuts down gracefully within
// ShutdownTimeout. It closes ln and returns nil after a clean shutdown.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	shutdownErr := srv.Shutdown(sctx)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	}
	if shutdownErr != nil {
		return fmt.Errorf("shut down %s: %w", ln.Addr(), shutdownErr)
	}
	return nil
}

// NewRedisClient returns a Redis client for url (redis://host:port/db or
// rediss://...) whose every network wait is bounded by timeout, with no
// retries, so that one slow or dead Redis cannot stall a decision beyond
// timeout. The client reconnects on its own when Redis comes back.
func NewRedisClient(url string, timeout time.Duration) (*redis.Client, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	if timeout <= 0 {
		timeout = DefaultRedisTimeout
	}
	opts.DialTimeout = timeout
	opts.ReadTimeout = timeout
	opts.WriteTimeout = timeout
	opts.PoolTimeout = timeout
	opts.ContextTimeoutEnabled = true
	opts.MaxRetries = -1 // no retries: the caller's deadline is the bound
	opts.PoolSize = max(opts.PoolSize, 128)
	opts.DisableIdentity = true
	return redis.NewClient(opts), nil
}
