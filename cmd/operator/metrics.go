package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
)

// newRegistry returns a metrics registry with the Go and process collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// serveMetrics serves reg on addr (/metrics, and /healthz for container
// healthchecks) in g until ctx is done. An empty addr serves nothing.
func serveMetrics(ctx context.Context, g *errgroup.Group, addr string, reg *prometheus.Registry) {
	serveMetricsWith(ctx, g, addr, reg, nil)
}

// serveMetricsWith is serveMetrics with page, when not nil, served at every
// other path (the status page beside /metrics).
func serveMetricsWith(ctx context.Context, g *errgroup.Group, addr string, reg *prometheus.Registry, page http.Handler) {
	if addr == "" {
		return
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	if page != nil {
		mux.Handle("/", page)
	}
	serveHTTP(ctx, g, "metrics server", addr, mux)
}

// serveHTTP serves h on addr in g until ctx is done, then shuts the server
// down, letting requests in flight finish for a few seconds. Long-lived
// responses (the status page's event stream) lift the write timeout
// themselves and end with ctx.
func serveHTTP(ctx context.Context, g *errgroup.Group, what, addr string, h http.Handler) {
	srv := &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	g.Go(func() error {
		if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
}
