package pdfake

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// Start serves the cluster's API (PD and Prometheus) on a new httptest
// server, which acts as the PD leader, and closes it when the test ends.
func (c *Cluster) Start(t testing.TB) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close)
	return srv
}

// FollowerMode is how a [Follower] answers.
type FollowerMode int32

const (
	// FollowerProxy answers as the leader does, as a PD follower that
	// proxies every request to the leader.
	FollowerProxy FollowerMode = iota
	// FollowerNoLeader answers 503 text/plain "redirect finds no leader",
	// as a follower that has lost the leader.
	FollowerNoLeader
	// FollowerUnreachable closes every connection without answering, as a
	// PD that is down or partitioned.
	FollowerUnreachable
)

// Follower is another PD member's URL serving the same cluster. Its mode
// can change while a test runs.
type Follower struct {
	// URL is the member's base URL, to put in pdapi.Config.URLs.
	URL string
	// Server is the underlying server; the test's end closes it.
	Server *httptest.Server

	mode atomic.Int32
	hits atomic.Int64
}

// SetMode changes how the follower answers from the next request on.
func (f *Follower) SetMode(m FollowerMode) { f.mode.Store(int32(m)) }

// Requests returns how many requests the follower has received.
func (f *Follower) Requests() int64 { return f.hits.Load() }

// StartFollower starts another member's server for the cluster, answering
// in the given mode, and closes it when the test ends. Use it with
// [Cluster.Start] to test a client's failover across PD URLs.
func (c *Cluster) StartFollower(t testing.TB, mode FollowerMode) *Follower {
	t.Helper()
	f := &Follower{}
	f.mode.Store(int32(mode))
	api := c.Handler()
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		switch FollowerMode(f.mode.Load()) {
		case FollowerNoLeader:
			http.Error(w, "[PD:apiutil:ErrRedirectNoLeader]redirect finds no leader", http.StatusServiceUnavailable)
		case FollowerUnreachable:
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					_ = conn.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		default:
			api.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(f.Server.Close)
	f.URL = f.Server.URL
	return f
}
