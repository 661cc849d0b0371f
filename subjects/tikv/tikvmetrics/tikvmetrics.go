package tikvmetrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// The queries, as sent. The rate window is 1m, so Prometheus must scrape
// TiKV at least every 30 s. Gauges are taken with max by (instance) so a
// target scraped by two jobs is not counted twice.
const (
	// QueryGRPCP99 is the p99 gRPC message duration, in seconds, without
	// the background kv_gc messages (as TiKV's Grafana dashboard does).
	QueryGRPCP99 = `histogram_quantile(0.99, sum by (le, instance) (rate(tikv_grpc_msg_duration_seconds_bucket{type!="kv_gc"}[1m])))`
	// QueryRaftLogLagP99 is the p99 raft log lag, in entries.
	QueryRaftLogLagP99 = `histogram_quantile(0.99, sum by (le, instance) (rate(tikv_raftstore_log_lag_bucket[1m])))`
	// QueryStoreAvailable is the store's available space, in bytes.
	QueryStoreAvailable = `max by (instance) (tikv_store_size_bytes{type="available"})`
	// QueryStoreCapacity is the store's capacity, in bytes.
	QueryStoreCapacity = `max by (instance) (tikv_store_size_bytes{type="capacity"})`
	// QueryLeaderCount is the number of region leaders on the instance.
	QueryLeaderCount = `max by (instance) (tikv_raftstore_region_count{type="leader"})`
	// QueryRegionCount is the number of regions (peers) on the instance.
	QueryRegionCount = `max by (instance) (tikv_raftstore_region_count{type="region"})`
)

// DefaultTimeout bounds one query.
const DefaultTimeout = 5 * time.Second

// Config says how to reach Prometheus. URL is required.
type Config struct {
	// URL of the Prometheus server, e.g. "http://prometheus:9090".
	URL string `yaml:"url"`
	// Client sends the requests; nil means client_golang's default
	// transport.
	Client *http.Client `yaml:"-"`
	// Timeout bounds each query. Zero means DefaultTimeout.
	Timeout time.Duration `yaml:"timeout"`
}

// Validate reports every problem with the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("tikvmetrics: no Prometheus URL given"))
	} else if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("tikvmetrics: bad Prometheus URL %q: want http(s)://host:port", c.URL))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("tikvmetrics: timeout %s is negative", c.Timeout))
	}
	return errors.Join(errs...)
}

// Client queries Prometheus for TiKV's metrics. It is safe for concurrent
// use.
type Client struct {
	api     v1.API
	timeout time.Duration
}

// New returns a Client for cfg, or the errors of cfg.Validate.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ac, err := api.NewClient(api.Config{Address: cfg.URL, Client: cfg.Client})
	if err != nil {
		return nil, fmt.Errorf("tikvmetrics: %w", err)
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	return &Client{api: v1.NewAPI(ac), timeout: timeout}, nil
}

// Instance is what Prometheus knows about one TiKV instance. A nil field
// means no data: no series, or a NaN (no traffic in the window).
type Instance struct {
	// GRPCP99Ms is the p99 gRPC message duration in milliseconds.
	GRPCP99Ms *float64 `json:"grpc_p99_ms"`
	// RaftLogLagP99 is the p99 raft log lag in entries.
	RaftLogLagP99 *float64 `json:"raft_log_lag_p99"`
	// AvailableBytes and CapacityBytes are the store's disk space.
	AvailableBytes *uint64 `json:"available_bytes"`
	CapacityBytes  *uint64 `json:"capacity_bytes"`
	// LeaderCount and RegionCount are the region leaders and regions
	// (peers) on the instance.
	LeaderCount *int `json:"leader_count"`
	RegionCount *int `json:"region_count"`
}

// Snapshot is the result of all the queries at one evaluation time.
type Snapshot struct {
	// At is the evaluation time asked for (zero: Prometheus's now).
	At time.Time
	// Instances are keyed by the `instance` label, i.e. PD's store
	// status_address.
	Instances map[string]Instance
	// Warnings are Prometheus's warnings, prefixed with the query name.
	Warnings []string
}

// For returns the metrics of the instance at statusAddress (PD's
// store.status_address), all nil if Prometheus has none.
func (s Snapshot) For(statusAddress string) Instance {
	return s.Instances[statusAddress]
}

// query is one of the Snapshot's queries and where its values go.
type query struct {
	name  string
	expr  string
	store func(in *Instance, v float64)
}

var snapshotQueries = []query{
	{"grpc_p99", QueryGRPCP99, func(in *Instance, v float64) { ms := v * 1000; in.GRPCP99Ms = &ms }},
	{"raft_log_lag_p99", QueryRaftLogLagP99, func(in *Instance, v float64) { in.RaftLogLagP99 = &v }},
	{"store_available", QueryStoreAvailable, func(in *Instance, v float64) { b := toUint(v); in.AvailableBytes = &b }},
	{"store_capacity", QueryStoreCapacity, func(in *Instance, v float64) { b := toUint(v); in.CapacityBytes = &b }},
	{"leader_count", QueryLeaderCount, func(in *Instance, v float64) { n := int(math.Round(v)); in.LeaderCount = &n }},
	{"region_count", QueryRegionCount, func(in *Instance, v float64) { n := int(math.Round(v)); in.RegionCount = &n }},
}

func toUint(v float64) uint64 {
	if v <= 0 {
		return 0
	}
	return uint64(math.Round(v))
}

// Snapshot runs every query at time at (zero: Prometheus's now), in
// parallel. When some queries fail, it returns what the others found and
// an error naming each failure; the failed queries' fields are nil for
// every instance, which means "could not look", so callers should report
// the error rather than read the gaps as healthy.
func (c *Client) Snapshot(ctx context.Context, at time.Time) (Snapshot, error) {
	type result struct {
		values   map[string]float64
		warnings []string
		err      error
	}
	results := make([]result, len(snapshotQueries))
	var wg sync.WaitGroup
	for i, q := range snapshotQueries {
		wg.Go(func() {
			v, w, err := c.byInstance(ctx, q.expr, at)
			if err != nil {
				err = fmt.Errorf("tikvmetrics: query %s: %w", q.name, err)
			}
			results[i] = result{v, w, err}
		})
	}
	wg.Wait()

	snap := Snapshot{At: at, Instances: map[string]Instance{}}
	var errs []error
	for i, q := range snapshotQueries {
		r := results[i]
		for _, w := range r.warnings {
			snap.Warnings = append(snap.Warnings, q.name+": "+w)
		}
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		for inst, v := range r.values {
			in := snap.Instances[inst]
			q.store(&in, v)
			snap.Instances[inst] = in
		}
	}
	return snap, errors.Join(errs...)
}

// ByInstance runs an instant query at time at (zero: Prometheus's now) and
// returns its samples by `instance` label. The query must return a vector
// whose series carry an instance label (aggregate with by (instance));
// series without one are left out, as are NaN and infinite samples.
func (c *Client) ByInstance(ctx context.Context, expr string, at time.Time) (map[string]float64, error) {
	v, _, err := c.byInstance(ctx, expr, at)
	return v, err
}

func (c *Client) byInstance(ctx context.Context, expr string, at time.Time) (map[string]float64, []string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	val, warnings, _, err := c.api.Query(ctx, expr, at)
	if err != nil {
		return nil, nil, err
	}
	vec, ok := val.(model.Vector)
	if !ok {
		return nil, warnings, fmt.Errorf("result is a %s, want a vector", val.Type())
	}
	out := make(map[string]float64, len(vec))
	for _, s := range vec {
		inst := string(s.Metric[model.InstanceLabel])
		f := float64(s.Value)
		if inst == "" || math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		out[inst] = f
	}
	return out, warnings, nil
}
