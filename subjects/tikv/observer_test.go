package tikv_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/operator-dev/operator/schemas"
	"github.com/operator-dev/operator/subjects/tikv"
	"github.com/operator-dev/operator/subjects/tikv/pdapi"
	"github.com/operator-dev/operator/subjects/tikv/pdapi/pdfake"
	"github.com/operator-dev/operator/subjects/tikv/tikvmetrics"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const gib = 1 << 30

var start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// cluster is a fake PD and Prometheus with stores 1-3 (tikv0-2, 100 GiB,
// 60 GiB free) and regions 101-109, three led by each store, a peer on every
// store. Requests are counted by path.
type cluster struct {
	*pdfake.Cluster
	URL  string
	hits *hits
}

func newCluster(t *testing.T, opts pdfake.Options) *cluster {
	t.Helper()
	if opts.Start.IsZero() {
		opts.Start = start
	}
	c := pdfake.New(opts)
	for i, host := range []string{"tikv0", "tikv1", "tikv2"} {
		c.AddStore(uint64(i+1), host+":20160", host+":20180", 100*gib, 60*gib)
	}
	for r := uint64(101); r <= 109; r++ {
		c.AddRegion(r, (r-101)/3+1, 1, 2, 3)
	}
	h := &hits{n: map[string]int{}}
	srv := httptest.NewServer(h.wrap(c.Handler()))
	t.Cleanup(srv.Close)
	return &cluster{Cluster: c, URL: srv.URL, hits: h}
}

// hits counts requests by path.
type hits struct {
	mu sync.Mutex
	n  map[string]int
}

func (h *hits) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.n[r.URL.Path]++
		h.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func (h *hits) reset() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.n
	h.n = map[string]int{}
	return out
}

// newObserver observes c on c's clock, through pdURLs (default: c's URL)
// and Prometheus at promURL ("" for none).
func newObserver(t *testing.T, c *cluster, promURL string, pdURLs ...string) *tikv.Observer {
	t.Helper()
	if len(pdURLs) == 0 {
		pdURLs = []string{c.URL}
	}
	o, err := tikv.NewObserver(tikv.ObserverConfig{
		PD:         pdapi.Config{URLs: pdURLs, RequestTimeout: 2 * time.Second},
		Prometheus: tikvmetrics.Config{URL: promURL, Timeout: 2 * time.Second},
		Now:        c.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// observed is one poll's result: the typed state, its JSON as the runtime
// publishes it, and the errors.
type observed struct {
	state tikv.State
	raw   map[string]any
	json  []byte
	errs  []schemas.ObserverError
}

// observe polls once and checks that the observation it makes is valid
// against the observation and TiKV state schemas.
func observe(t *testing.T, o *tikv.Observer) observed {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := o.Observe(ctx)
	if err != nil {
		t.Fatalf("Observe: %v", err)
	}
	state, ok := st.Value.(tikv.State)
	if !ok {
		t.Fatalf("state is a %T", st.Value)
	}
	b, err := json.Marshal(state)
	if err != nil {
		t.Fatal(err)
	}
	errs := st.Errors
	if errs == nil {
		errs = []schemas.ObserverError{}
	}
	obs, err := json.Marshal(schemas.Observation{Subject: tikv.Name, Instance: "c1", ObservedAt: start,
		Observer: schemas.ObserverInfo{Errors: errs}, State: b})
	if err != nil {
		t.Fatal(err)
	}
	v, err := schemas.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Validate(schemas.TypeObservation, obs); err != nil {
		t.Fatalf("the observation does not match the schemas: %v\n%s", err, b)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	return observed{state: state, raw: raw, json: b, errs: st.Errors}
}

func (ob observed) store(t *testing.T, id uint64) tikv.Store {
	t.Helper()
	for _, s := range ob.state.Stores {
		if s.ID == id {
			return s
		}
	}
	t.Fatalf("no store %d in %s", id, ob.json)
	return tikv.Store{}
}

// rawStore is the JSON object of a store, to see which fields are left out.
func (ob observed) rawStore(t *testing.T, id uint64) map[string]any {
	t.Helper()
	stores, _ := ob.raw["stores"].([]any)
	for _, s := range stores {
		m := s.(map[string]any)
		if m["id"] == float64(id) {
			return m
		}
	}
	t.Fatalf("no store %d in %s", id, ob.json)
	return nil
}

func (ob observed) errorSources() []string {
	var out []string
	for _, e := range ob.errs {
		out = append(out, e.Source)
	}
	return out
}

func TestHealthyClusterGolden(t *testing.T) {
	c := newCluster(t, pdfake.Options{})
	c.SetP99("tikv0:20180", 12.5)
	c.SetP99("tikv1:20180", 30)
	c.SetP99("tikv2:20180", math.NaN()) // no traffic: no data
	c.SetRaftLogLag("tikv0:20180", 4)
	c.Step(start.Add(10 * time.Second))
	ob := observe(t, newObserver(t, c, c.URL))
	if len(ob.errs) != 0 {
		t.Fatalf("errors: %v", ob.errs)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, ob.json, "", "  "); err != nil {
		t.Fatal(err)
	}
	got := strings.ReplaceAll(pretty.String(), c.URL, "PD_URL") + "\n"
	golden := filepath.Join("testdata", "healthy.golden.json")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("state differs from %s (go test -update rewrites it):\n%s", golden, got)
	}
}

// TestStoreStates covers PD's store state quirks as the observer reports
// them: Disconnected only after 20 s without a heartbeat, Down only after
// max-store-down-time, Offline kept while draining, Tombstones listed.
func TestStoreStates(t *testing.T) {
	tests := []struct {
		name        string
		maxDownTime time.Duration
		meta        pdapi.MetaState
		silentFor   time.Duration
		wantState   string
		wantAge     float64
	}{
		{"heartbeating store is Up", 0, pdapi.MetaUp, 0, "Up", 0},
		{"20 s without a heartbeat is still Up", 0, pdapi.MetaUp, 20 * time.Second, "Up", 20},
		{"21 s without a heartbeat is Disconnected", 0, pdapi.MetaUp, 21 * time.Second, "Disconnected", 21},
		{"a killed store is Disconnected for 30 minutes, not Down", 0, pdapi.MetaUp, 30 * time.Minute, "Disconnected", 1800},
		{"past max-store-down-time it is Down", 0, pdapi.MetaUp, 30*time.Minute + time.Second, "Down", 1801},
		{"a shorter max-store-down-time makes it Down sooner", time.Minute, pdapi.MetaUp, 61 * time.Second, "Down", 61},
		{"an Offline store that stops heartbeating stays Offline", 0, pdapi.MetaOffline, 2 * time.Hour, "Offline", 7200},
		{"a Tombstone store is listed", 0, pdapi.MetaTombstone, time.Hour, "Tombstone", 3600},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, pdfake.Options{MaxStoreDownTime: tc.maxDownTime})
			c.SetStoreState(3, tc.meta)
			c.StopHeartbeats(3)
			c.Step(start.Add(tc.silentFor))
			ob := observe(t, newObserver(t, c, ""))
			if len(ob.errs) != 0 {
				t.Fatalf("errors: %v", ob.errs)
			}
			if len(ob.state.Stores) != 3 {
				t.Fatalf("%d stores, want 3: %s", len(ob.state.Stores), ob.json)
			}
			s := ob.store(t, 3)
			if s.StateName != tc.wantState {
				t.Errorf("state %q, want %q", s.StateName, tc.wantState)
			}
			if s.LastHeartbeatAgeS == nil || *s.LastHeartbeatAgeS != tc.wantAge {
				t.Errorf("heartbeat age %v, want %v", s.LastHeartbeatAgeS, tc.wantAge)
			}
			if up := ob.store(t, 1); up.StateName != "Up" || *up.LastHeartbeatAgeS != 0 {
				t.Errorf("store 1: %+v", up)
			}
			if want := float64(pdfake.DefaultMaxStoreDownTime / time.Second); tc.maxDownTime == 0 && ob.state.Schedule.MaxStoreDownTimeS != want {
				t.Errorf("max_store_down_time_s %v, want %v", ob.state.Schedule.MaxStoreDownTimeS, want)
			}
		})
	}
}

// TestSizes: PD writes sizes humanised to 4 significant digits; the
// observer parses them, and prefers Prometheus's exact bytes when it has
// both sizes for the store.
func TestSizes(t *testing.T) {
	const capacity, available = 62_725_000_123, 44_098_765_432 // "58.42GiB", "41.07GiB"
	humanised := func(b uint64) uint64 {
		v, err := pdapi.ParseByteSize(pdapi.ByteSize(b).String())
		if err != nil {
			t.Fatal(err)
		}
		return uint64(v)
	}
	tests := []struct {
		name                        string
		prometheus                  bool
		wantCapacity, wantAvailable uint64
	}{
		{"from PD's humanised strings", false, humanised(capacity), humanised(available)},
		{"from Prometheus, exact", true, capacity, available},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, pdfake.Options{})
			c.SetStoreSize(2, capacity, available)
			prom := ""
			if tc.prometheus {
				prom = c.URL
			}
			s := observe(t, newObserver(t, c, prom)).store(t, 2)
			if s.CapacityBytes != tc.wantCapacity || s.AvailableBytes != tc.wantAvailable {
				t.Fatalf("capacity %d available %d, want %d %d", s.CapacityBytes, s.AvailableBytes, tc.wantCapacity, tc.wantAvailable)
			}
			if !tc.prometheus && (s.CapacityBytes == capacity || pdapi.ByteSize(s.CapacityBytes).String() != "58.42GiB") {
				t.Fatalf("capacity %d is not PD's rounded 58.42GiB", s.CapacityBytes)
			}
		})
	}
	t.Run("a Disconnected store has no series: PD's sizes", func(t *testing.T) {
		c := newCluster(t, pdfake.Options{})
		c.SetStoreSize(3, capacity, available)
		c.StopHeartbeats(3)
		c.Step(start.Add(time.Minute))
		ob := observe(t, newObserver(t, c, c.URL))
		s := ob.store(t, 3)
		if s.CapacityBytes != humanised(capacity) {
			t.Fatalf("capacity %d, want PD's %d", s.CapacityBytes, humanised(capacity))
		}
		if v, ok := ob.rawStore(t, 3)["p99_ms"]; !ok || v != nil {
			t.Fatalf("p99_ms of an unscraped store = %v (present %v), want null", v, ok)
		}
	})
}

func TestLatencyJoinedOnStatusAddress(t *testing.T) {
	c := newCluster(t, pdfake.Options{})
	c.SetP99("tikv1:20180", 250)
	c.SetP99("tikv2:20180", math.NaN())
	c.SetP99("tikv1:20160", 999) // the gRPC address is not Prometheus's instance
	ob := observe(t, newObserver(t, c, c.URL))
	if v, ok := ob.store(t, 2).P99MS.Float(); !ok || v != 250 {
		t.Errorf("store 2 p99 %v %v, want 250", v, ok)
	}
	for _, id := range []uint64{1, 3} { // no series; NaN
		if v, ok := ob.rawStore(t, id)["p99_ms"]; !ok || v != nil {
			t.Errorf("store %d p99_ms = %v (present %v), want null", id, v, ok)
		}
	}
}

func TestRegions(t *testing.T) {
	c := newCluster(t, pdfake.Options{})
	c.AddRegion(200, 0, 1, 2) // leaderless, and a replica short
	c.AddRegion(201, 1, 1, 2) // a replica short
	c.StopHeartbeats(3)
	c.Step(start.Add(11 * time.Minute)) // store 3's peers are pending and down
	ob := observe(t, newObserver(t, c, ""))
	if len(ob.errs) != 0 {
		t.Fatalf("errors: %v", ob.errs)
	}
	r := ob.state.Regions
	if r.Count == nil || *r.Count != 11 {
		t.Errorf("count %v, want 11", r.Count)
	}
	check := func(name string, got *tikv.RegionCheck, count int, sample ...uint64) {
		t.Helper()
		if got == nil || got.Count != count || !slices.Equal(got.Sample, sample) {
			t.Errorf("%s = %+v, want count %d sample %v", name, got, count, sample)
		}
	}
	// Regions 107-109 are led by store 3: the fake holds no elections, so
	// their leader stays there and only the others see store 3's peer down.
	check("down_peer", r.DownPeer, 6, 101, 102, 103, 104, 105)
	check("pending_peer", r.PendingPeer, 6, 101, 102, 103, 104, 105)
	check("miss_peer", r.MissPeer, 2, 200, 201)
	check("offline_peer", r.OfflinePeer, 0)
	check("leaderless", r.Leaderless, 1, 200)
	if r.DownPeer.Sample == nil || len(ob.raw["regions"].(map[string]any)["offline_peer"].(map[string]any)["sample"].([]any)) != 0 {
		t.Errorf("an empty sample must be [], not null: %s", ob.json)
	}
}

// TestFailover: the observer reads through whichever PD member answers.
func TestFailover(t *testing.T) {
	tests := []struct {
		name string
		mode pdfake.FollowerMode
	}{
		{"first URL unreachable", pdfake.FollowerUnreachable},
		{"first URL has lost the leader", pdfake.FollowerNoLeader},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, pdfake.Options{})
			f := c.StartFollower(t, tc.mode)
			ob := observe(t, newObserver(t, c, "", f.URL, c.URL))
			if len(ob.errs) != 0 {
				t.Fatalf("errors: %v", ob.errs)
			}
			if !ob.state.PD.Reachable || ob.state.PD.URL != c.URL {
				t.Fatalf("pd = %+v, want reachable through %s", ob.state.PD, c.URL)
			}
			if len(ob.state.Stores) != 3 || len(ob.state.Members) != 3 {
				t.Fatalf("state: %s", ob.json)
			}
			// The follower starts answering again: nothing changes.
			f.SetMode(pdfake.FollowerProxy)
			if ob := observe(t, newObserver(t, c, "", f.URL, c.URL)); ob.state.PD.URL != f.URL || len(ob.errs) != 0 {
				t.Fatalf("through a proxying follower: %+v, %v", ob.state.PD, ob.errs)
			}
		})
	}
}

func TestMembers(t *testing.T) {
	c := newCluster(t, pdfake.Options{})
	c.SetMemberHealth("pd1", false)
	c.SetPDLeader("pd2")
	ob := observe(t, newObserver(t, c, ""))
	var got []string
	for _, m := range ob.state.Members {
		got = append(got, m.Name+":"+boolWord(*m.Health, "healthy", "unhealthy")+":"+boolWord(*m.Leader, "leader", "follower"))
		if m.MemberID == "" || len(m.ClientURLs) == 0 {
			t.Errorf("member %+v lacks an id or URLs", m)
		}
	}
	want := []string{"pd0:healthy:follower", "pd1:unhealthy:follower", "pd2:healthy:leader"}
	if !slices.Equal(got, want) {
		t.Fatalf("members %v, want %v", got, want)
	}
}

func boolWord(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

func TestEvictLeaderAndOperators(t *testing.T) {
	c := newCluster(t, pdfake.Options{})
	pc, err := pdapi.New(pdapi.Config{URLs: []string{c.URL}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := pc.AddEvictLeader(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := pc.AddTransferLeader(ctx, 101, 3); err != nil {
		t.Fatal(err)
	}
	if err := pc.SetStoreLimit(ctx, 3, 30, pdapi.LimitAddPeer); err != nil {
		t.Fatal(err)
	}
	ob := observe(t, newObserver(t, c, ""))
	for id, want := range map[uint64]bool{1: false, 2: true, 3: false} {
		if s := ob.store(t, id); s.EvictLeader == nil || *s.EvictLeader != want {
			t.Errorf("store %d evict_leader %v, want %v", id, s.EvictLeader, want)
		}
	}
	if s := ob.store(t, 3); *s.AddPeerLimit != 30 || *s.RemovePeerLimit != pdfake.DefaultStoreLimit {
		t.Errorf("store 3 limits %v/%v, want 30/%v", *s.AddPeerLimit, *s.RemovePeerLimit, pdfake.DefaultStoreLimit)
	}
	if op := ob.state.Operators; op == nil || op.Count != 1 || !slices.Equal(op.RegionIDs, []uint64{101}) {
		t.Errorf("operators %+v, want region 101", op)
	}
	if s := ob.state.Schedule; s == nil || !slices.Contains(s.Schedulers, pdapi.EvictLeaderScheduler) {
		t.Errorf("schedule %+v lacks the evict-leader scheduler", s)
	}
}

// TestOneCallPerEndpoint: a poll calls each PD endpoint and runs each
// Prometheus query once, however many stores there are, and never scans
// every region.
func TestOneCallPerEndpoint(t *testing.T) {
	wantPaths := map[string]int{
		"/pd/api/v1/stores/check": 1, "/pd/api/v1/scheduler-config/evict-leader-scheduler/list": 1,
		"/pd/api/v1/stores/limit": 1, "/pd/api/v1/health": 1, "/pd/api/v1/members": 1,
		"/pd/api/v1/config/schedule": 1, "/pd/api/v1/schedulers": 1, "/pd/api/v1/regions/count": 1,
		"/pd/api/v1/regions/check/down-peer": 1, "/pd/api/v1/regions/check/miss-peer": 1,
		"/pd/api/v1/regions/check/pending-peer": 1, "/pd/api/v1/regions/check/offline-peer": 1,
		"/pd/api/v1/operators": 1, "/api/v1/query": 4,
	}
	for _, stores := range []int{3, 8} {
		c := newCluster(t, pdfake.Options{})
		for id := 4; id <= stores; id++ {
			c.AddStore(uint64(id), "tikv:20160", "tikv:20180", 100*gib, 50*gib)
		}
		o := newObserver(t, c, c.URL)
		c.hits.reset()
		for range 2 {
			ob := observe(t, o)
			if len(ob.state.Stores) != stores {
				t.Fatalf("%d stores, want %d", len(ob.state.Stores), stores)
			}
			got := c.hits.reset()
			for path, n := range got {
				if wantPaths[path] != n {
					t.Errorf("%d stores: %s called %d times in a poll, want %d", stores, path, n, wantPaths[path])
				}
			}
			for path, n := range wantPaths {
				if got[path] != n {
					t.Errorf("%d stores: %s called %d times in a poll, want %d", stores, path, got[path], n)
				}
			}
		}
	}
}

// closedURL returns a URL nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	return url
}

// TestPartialObservations: a source that cannot be read is listed in the
// errors and its fields are left out, never reported as empty or zero.
func TestPartialObservations(t *testing.T) {
	t.Run("PD unreachable", func(t *testing.T) {
		c := newCluster(t, pdfake.Options{})
		dead := closedURL(t)
		ob := observe(t, newObserver(t, c, c.URL, dead))
		if ob.state.PD.Reachable || ob.state.PD.URL != dead {
			t.Errorf("pd = %+v, want unreachable at %s", ob.state.PD, dead)
		}
		if !slices.Equal(ob.errorSources(), []string{"pd"}) || !strings.Contains(ob.errs[0].Message, "no PD URL answered") {
			t.Errorf("errors %v, want one pd entry", ob.errs)
		}
		for _, k := range []string{"stores", "members", "schedule", "operators"} {
			if _, ok := ob.raw[k]; ok {
				t.Errorf("%s is present: %s", k, ob.json)
			}
		}
		if regions := ob.raw["regions"].(map[string]any); len(regions) != 0 {
			t.Errorf("regions %v, want no field", regions)
		}
		if !ob.state.Prometheus.Reachable {
			t.Errorf("Prometheus answered, but reachable is false")
		}
	})
	t.Run("Prometheus unreachable", func(t *testing.T) {
		c := newCluster(t, pdfake.Options{})
		ob := observe(t, newObserver(t, c, closedURL(t)))
		if ob.state.Prometheus != (tikv.PromState{Configured: true, Reachable: false}) {
			t.Errorf("prometheus %+v", ob.state.Prometheus)
		}
		want := []string{"prometheus.grpc_p99", "prometheus.raft_log_lag_p99", "prometheus.store_available", "prometheus.store_capacity"}
		if got := ob.errorSources(); !slices.Equal(got, want) {
			t.Errorf("error sources %v, want %v", got, want)
		}
		s := ob.rawStore(t, 1)
		for _, k := range []string{"p99_ms", "raft_log_lag"} {
			if _, ok := s[k]; ok {
				t.Errorf("%s present though Prometheus could not be queried: %v", k, s)
			}
		}
		if s["capacity_bytes"] != float64(100*gib) {
			t.Errorf("capacity %v, want PD's", s["capacity_bytes"])
		}
		if !ob.state.PD.Reachable || len(ob.state.Stores) != 3 {
			t.Errorf("PD part: %s", ob.json)
		}
	})
	t.Run("no Prometheus configured: no data", func(t *testing.T) {
		c := newCluster(t, pdfake.Options{})
		ob := observe(t, newObserver(t, c, ""))
		if len(ob.errs) != 0 || ob.state.Prometheus.Configured {
			t.Fatalf("errors %v, prometheus %+v", ob.errs, ob.state.Prometheus)
		}
		if v, ok := ob.rawStore(t, 1)["p99_ms"]; !ok || v != nil {
			t.Errorf("p99_ms = %v (present %v), want null", v, ok)
		}
	})
	t.Run("one PD endpoint failing", func(t *testing.T) {
		c := newCluster(t, pdfake.Options{})
		failing := http.NewServeMux()
		failing.Handle("/", c.Handler())
		failing.HandleFunc("GET /pd/api/v1/regions/check/down-peer", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`"[PD:region:ErrRegionScan]scan failed"`))
		})
		failing.HandleFunc("GET /pd/api/v1/scheduler-config/evict-leader-scheduler/list", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`"[PD:scheduler:ErrSchedulerConfig]no config"`))
		})
		srv := httptest.NewServer(failing)
		t.Cleanup(srv.Close)
		ob := observe(t, newObserver(t, c, "", srv.URL))
		if got, want := ob.errorSources(), []string{"pd.evict_leader", "pd.regions_check.down-peer"}; !slices.Equal(got, want) {
			t.Errorf("error sources %v, want %v", got, want)
		}
		regions := ob.raw["regions"].(map[string]any)
		for k, want := range map[string]bool{"down_peer": false, "leaderless": false, "miss_peer": true, "count": true} {
			if _, ok := regions[k]; ok != want {
				t.Errorf("regions.%s present = %v, want %v", k, ok, want)
			}
		}
		if _, ok := ob.rawStore(t, 1)["evict_leader"]; ok {
			t.Errorf("evict_leader present though its list could not be read")
		}
	})
	t.Run("cluster not bootstrapped: no stores is a fact", func(t *testing.T) {
		c := pdfake.New(pdfake.Options{Start: start})
		srv := c.Start(t)
		o, err := tikv.NewObserver(tikv.ObserverConfig{PD: pdapi.Config{URLs: []string{srv.URL}}, Now: c.Now})
		if err != nil {
			t.Fatal(err)
		}
		ob := observe(t, o)
		if len(ob.errs) != 0 {
			t.Fatalf("errors: %v", ob.errs)
		}
		if ob.state.Stores == nil || len(ob.state.Stores) != 0 || *ob.state.Regions.Count != 0 || ob.state.Regions.DownPeer.Count != 0 {
			t.Fatalf("state: %s", ob.json)
		}
	})
}

func TestObserveStopsWhenCanceled(t *testing.T) {
	c := newCluster(t, pdfake.Options{})
	o := newObserver(t, c, c.URL)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := o.Observe(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  tikv.ObserverConfig
		want string
	}{
		{"no PD URL", tikv.ObserverConfig{}, "no PD URL"},
		{"bad Prometheus URL", tikv.ObserverConfig{PD: pdapi.Config{URLs: []string{"pd0:2379"}}, Prometheus: tikvmetrics.Config{URL: "prom:9090"}}, "bad Prometheus URL"},
		{"sample too large", tikv.ObserverConfig{PD: pdapi.Config{URLs: []string{"pd0:2379"}}, SampleSize: tikv.MaxSample + 1}, "sample size"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tikv.NewObserver(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if err := (tikv.ObserverConfig{PD: pdapi.Config{URLs: []string{"pd0:2379", "http://pd1:2379"}}}).Validate(); err != nil {
		t.Fatalf("a minimal config is refused: %v", err)
	}
}
