package tikvmetrics_test

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/operator-dev/operator/subjects/tikv/pdapi"
	"github.com/operator-dev/operator/subjects/tikv/pdapi/pdfake"
	"github.com/operator-dev/operator/subjects/tikv/tikvmetrics"
)

const gib = 1 << 30

var start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newClient(t *testing.T, url string) *tikvmetrics.Client {
	t.Helper()
	c, err := tikvmetrics.New(tikvmetrics.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fakeCluster is three TiKV stores behind the fake PD and Prometheus.
func fakeCluster(t *testing.T) (*pdfake.Cluster, *httptest.Server) {
	t.Helper()
	c := pdfake.New(pdfake.Options{Start: start})
	c.AddStore(1, "tikv0:20160", "tikv0:20180", 100*gib, 25*gib)
	c.AddStore(2, "tikv1:20160", "tikv1:20180", 100*gib, 80*gib)
	c.AddStore(3, "tikv2:20160", "tikv2:20180", 100*gib, 80*gib)
	for r := uint64(1); r <= 6; r++ {
		c.AddRegion(r, 1+(r%2), 1, 2, 3) // leaders on stores 1 and 2 only
	}
	return c, c.Start(t)
}

func TestSnapshot(t *testing.T) {
	c, srv := fakeCluster(t)
	c.SetP99("tikv0:20180", 3.5)
	c.SetP99("tikv1:20180", math.NaN()) // no traffic
	c.SetRaftLogLag("tikv0:20180", 12)
	c.Step(start.Add(time.Minute))

	snap, err := newClient(t, srv.URL).Snapshot(testCtx(t), c.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !snap.At.Equal(c.Now()) || len(snap.Instances) != 3 {
		t.Fatalf("snapshot at %v with %d instances", snap.At, len(snap.Instances))
	}
	tikv0 := snap.For("tikv0:20180")
	if tikv0.GRPCP99Ms == nil || math.Abs(*tikv0.GRPCP99Ms-3.5) > 1e-9 {
		t.Fatalf("tikv0 p99 %v, want 3.5 ms", deref(tikv0.GRPCP99Ms))
	}
	if tikv0.RaftLogLagP99 == nil || *tikv0.RaftLogLagP99 != 12 {
		t.Fatalf("tikv0 raft log lag %v", deref(tikv0.RaftLogLagP99))
	}
	if *tikv0.AvailableBytes != 25*gib || *tikv0.CapacityBytes != 100*gib {
		t.Fatalf("tikv0 sizes %d / %d", *tikv0.AvailableBytes, *tikv0.CapacityBytes)
	}
	if *tikv0.RegionCount != 6 || *tikv0.LeaderCount != 3 {
		t.Fatalf("tikv0 counts leader %d region %d", *tikv0.LeaderCount, *tikv0.RegionCount)
	}
	// NaN is no data, not zero latency.
	if p := snap.For("tikv1:20180").GRPCP99Ms; p != nil {
		t.Fatalf("tikv1 p99 %v, want no data for NaN", *p)
	}
	if n := snap.For("tikv2:20180").LeaderCount; n == nil || *n != 0 {
		t.Fatalf("tikv2 leader count %v, want a real 0", n)
	}
}

// TestJoinByStatusAddress: metrics join PD's stores on status_address; the
// gRPC address finds nothing.
func TestJoinByStatusAddress(t *testing.T) {
	c, srv := fakeCluster(t)
	c.SetP99("tikv2:20180", 180)
	pc, err := pdapi.New(pdapi.Config{URLs: []string{srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	stores, err := pc.Stores(ctx)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := newClient(t, srv.URL).Snapshot(ctx, c.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stores {
		if in := snap.For(s.Meta.Address); in != (tikvmetrics.Instance{}) {
			t.Errorf("store %d: metrics found under the gRPC address %s", s.ID(), s.Meta.Address)
		}
		in := snap.For(s.Meta.StatusAddress)
		if in.CapacityBytes == nil || *in.CapacityBytes != uint64(s.Status.Capacity) {
			t.Errorf("store %d: capacity %v via %s, PD says %d", s.ID(), in.CapacityBytes, s.Meta.StatusAddress, s.Status.Capacity)
		}
		if s.ID() == 3 && (in.GRPCP99Ms == nil || *in.GRPCP99Ms != 180) {
			t.Errorf("store 3 p99 %v", deref(in.GRPCP99Ms))
		}
	}
}

// TestStoppedStoreHasNoMetrics: a TiKV that is no longer scraped has no
// series at all, which is no data rather than zeros.
func TestStoppedStoreHasNoMetrics(t *testing.T) {
	c, srv := fakeCluster(t)
	c.StopHeartbeats(3)
	c.Step(start.Add(time.Minute))
	snap, err := newClient(t, srv.URL).Snapshot(testCtx(t), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := snap.Instances["tikv2:20180"]; ok {
		t.Fatalf("stopped store has metrics %+v", snap.Instances["tikv2:20180"])
	}
}

// TestQueriesAggregateBeforeQuantile: every histogram_quantile the client
// sends sums buckets by (le, instance); the fake refuses anything else,
// and ByInstance must carry the instance label through.
func TestQueriesAggregateBeforeQuantile(t *testing.T) {
	for _, q := range []string{tikvmetrics.QueryGRPCP99, tikvmetrics.QueryRaftLogLagP99} {
		if !strings.Contains(q, "histogram_quantile(0.99, sum by (le, instance) (") {
			t.Errorf("%s does not sum by (le, instance)", q)
		}
	}
	if !strings.Contains(tikvmetrics.QueryGRPCP99, `type!="kv_gc"`) {
		t.Error("the gRPC p99 includes kv_gc")
	}
	_, srv := fakeCluster(t)
	_, err := newClient(t, srv.URL).ByInstance(testCtx(t),
		`histogram_quantile(0.99, rate(tikv_grpc_msg_duration_seconds_bucket[1m]))`, time.Time{})
	if err == nil {
		t.Fatal("an unaggregated quantile was answered")
	}
}

// TestRealPrometheusAnswer decodes an answer in Prometheus's own format:
// NaN and +Inf samples and a series without an instance are left out.
func TestRealPrometheusAnswer(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("testdata", "query_grpc_p99.json"))
	if err != nil {
		t.Fatal(err)
	}
	var gotQuery string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotQuery = r.FormValue("query")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	got, err := newClient(t, srv.URL).ByInstance(testCtx(t), tikvmetrics.QueryGRPCP99, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["tikv0:20180"] != 0.0031457280000000004 {
		t.Fatalf("samples %v", got)
	}
	if gotQuery != tikvmetrics.QueryGRPCP99 {
		t.Fatalf("sent %q", gotQuery)
	}
}

// TestPartialFailure: when some queries fail, the others' results come
// back with an error naming the failures.
func TestPartialFailure(t *testing.T) {
	errBody, err := os.ReadFile(filepath.Join("testdata", "query_error.json"))
	if err != nil {
		t.Fatal(err)
	}
	c, fake := fakeCluster(t)
	c.SetP99("tikv0:20180", 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.FormValue("query"), "tikv_store_size_bytes") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write(errBody)
			return
		}
		fake.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	snap, err := newClient(t, srv.URL).Snapshot(testCtx(t), time.Time{})
	if err == nil || !strings.Contains(err.Error(), "store_available") || !strings.Contains(err.Error(), "store_capacity") {
		t.Fatalf("err = %v", err)
	}
	in := snap.For("tikv0:20180")
	if in.GRPCP99Ms == nil || in.AvailableBytes != nil || in.CapacityBytes != nil {
		t.Fatalf("instance %+v", in)
	}

	// Nothing listening at all: an error, and no instances.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	snap, err = newClient(t, deadURL).Snapshot(testCtx(t), time.Time{})
	if err == nil || len(snap.Instances) != 0 {
		t.Fatalf("unreachable Prometheus: %v, %d instances", err, len(snap.Instances))
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg tikvmetrics.Config
		ok  bool
	}{
		{tikvmetrics.Config{URL: "http://prometheus:9090"}, true},
		{tikvmetrics.Config{}, false},
		{tikvmetrics.Config{URL: "prometheus:9090"}, false},
		{tikvmetrics.Config{URL: "http://prometheus:9090", Timeout: -1}, false},
	} {
		if err := tc.cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("Validate(%+v) = %v", tc.cfg, err)
		}
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}
