package ratelimiter

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/operator-dev/operator/internal/redistest"
)

// BenchmarkCheck measures one decision per algorithm through go-redis
// against a real redis-server: serially (the round-trip latency) and in
// parallel (the throughput one node reaches).
func BenchmarkCheck(b *testing.B) {
	addr := redistest.Start(b).Addr
	for _, alg := range Algorithms() {
		l := newLimiter(b, addr, Config{DefaultLimit: 10000, DefaultWindow: time.Minute, DefaultAlgorithm: alg})
		ctx := context.Background()
		keys := make([]string, 1000)
		for i := range keys {
			keys[i] = "bench:" + string(alg) + ":" + strconv.Itoa(i)
		}
		b.Run(string(alg)+"/serial", func(b *testing.B) {
			i := 0
			for b.Loop() {
				if _, err := l.Check(ctx, keys[i%len(keys)], 1); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run(string(alg)+"/parallel", func(b *testing.B) {
			var n atomic.Int64
			b.SetParallelism(32)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := l.Check(ctx, keys[n.Add(1)%int64(len(keys))], 1); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkHTTPCheck measures a decision through the whole HTTP handler
// over a keep-alive loopback connection.
func BenchmarkHTTPCheck(b *testing.B) {
	addr := redistest.Start(b).Addr
	n := startNode(b, addr, Config{NodeID: "b1", DefaultLimit: 10000}, HandlerOptions{})
	hc := n.srv.Client()
	hc.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	var i atomic.Int64
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := `{"key":"h:` + strconv.FormatInt(i.Add(1)%1000, 10) + `"}`
			resp, err := hc.Post(n.srv.URL+"/v1/check", "application/json", strings.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
	})
}

// BenchmarkCheckHandler measures the check endpoint's own work, with no
// network in the way: what a decision costs in the node besides the
// connection's system calls, allocations included.
func BenchmarkCheckHandler(b *testing.B) {
	addr := redistest.Start(b).Addr
	for _, tc := range []struct {
		name  string
		limit int64 // 1: every check after the first is denied, from the over-limit cache
	}{{"allowed", 1_000_000_000}, {"over_limit", 1}} {
		b.Run(tc.name, func(b *testing.B) {
			l := newLimiter(b, addr, Config{DefaultLimit: tc.limit, DefaultWindow: time.Hour, DefaultAlgorithm: FixedWindow})
			h := NewHandler(l, HandlerOptions{})
			body := []byte(`{"key":"handler:1","cost":1}`)
			rd := bytes.NewReader(body)
			req := httptest.NewRequest(http.MethodPost, "/v1/check", rd)
			w := &discardWriter{header: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(body)
				req.Body = io.NopCloser(rd)
				clear(w.header)
				h.ServeHTTP(w, req)
				if w.status != http.StatusOK && w.status != http.StatusTooManyRequests {
					b.Fatalf("status %d", w.status)
				}
			}
		})
	}
}

// discardWriter is a ResponseWriter that keeps only the status, so a
// benchmark counts the handler's allocations and not a recorder's.
type discardWriter struct {
	header http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(status int)      { w.status = status }
