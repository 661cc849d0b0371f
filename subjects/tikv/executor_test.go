package tikv_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/operator-dev/operator/actuators"
	"github.com/operator-dev/operator/schemas"
	"github.com/operator-dev/operator/subjects/tikv"
	"github.com/operator-dev/operator/subjects/tikv/pdapi"
	"github.com/operator-dev/operator/subjects/tikv/pdapi/pdfake"
)

// pd is a fake PD with stores 1-3 and regions 101-109 (three led by each
// store, a peer on every store), behind a recorder of mutating calls that
// can inject failures.
type pd struct {
	*pdfake.Cluster
	url string

	mu    sync.Mutex
	calls []call
	// fail, when set, answers a mutating call instead of PD.
	fail func(r *http.Request) (int, string)
}

type call struct {
	method, path, idempotencyKey string
}

func newPD(t *testing.T) *pd {
	t.Helper()
	c := pdfake.New(pdfake.Options{Start: start})
	for i, host := range []string{"tikv0", "tikv1", "tikv2"} {
		c.AddStore(uint64(i+1), host+":20160", host+":20180", 100*gib, 60*gib)
	}
	for r := uint64(101); r <= 109; r++ {
		c.AddRegion(r, (r-101)/3+1, 1, 2, 3)
	}
	p := &pd{Cluster: c}
	api := c.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			p.mu.Lock()
			p.calls = append(p.calls, call{r.Method, r.URL.Path, r.Header.Get("Idempotency-Key")})
			fail := p.fail
			p.mu.Unlock()
			if fail != nil {
				if status, body := fail(r); status != 0 {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(status)
					_, _ = w.Write([]byte(body))
					return
				}
			}
		}
		api.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.url = srv.URL
	return p
}

func (p *pd) mutations() []call {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

func executor(t *testing.T, urls ...string) *tikv.Executor {
	t.Helper()
	c, err := pdapi.New(pdapi.Config{URLs: urls, RequestTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e, err := tikv.NewExecutor(c)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func request(action string, params map[string]any) schemas.ActionRequest {
	return schemas.ActionRequest{ID: "req-" + action, Subject: tikv.Name, Instance: "c1", Action: action, Params: params,
		RequestedBy: "test", RequestedAt: start}
}

type outcome int

const (
	ok outcome = iota
	permanent
	transient
)

func (o outcome) String() string { return [...]string{"ok", "permanent error", "transient error"}[o] }

func classify(err error) outcome {
	switch {
	case err == nil:
		return ok
	case actuators.IsTransient(err):
		return transient
	}
	return permanent
}

func TestExecute(t *testing.T) {
	tests := []struct {
		name   string
		action string
		params map[string]any
		// setup prepares the cluster (applied after newPD).
		setup func(p *pd)
		want  outcome
		// calls are the mutating calls expected, as "METHOD path".
		calls []string
		// check inspects the cluster after the action and a Step.
		check  func(t *testing.T, p *pd)
		reason string
	}{
		{
			name: "evict_leader adds the store to the scheduler", action: "evict_leader",
			params: map[string]any{"store_id": "2"},
			calls:  []string{"POST /pd/api/v1/schedulers"},
			check: func(t *testing.T, p *pd) {
				if got := p.EvictedStores(); !slices.Equal(got, []uint64{2}) {
					t.Errorf("evicted %v, want [2]", got)
				}
				if n := p.LeaderCount(2); n != 0 {
					t.Errorf("store 2 still leads %d regions", n)
				}
			},
			reason: "store 2 (Up, 3 leaders) added to the evict-leader scheduler; 2 other Up store(s)",
		},
		{
			name: "evict_leader with approval is the same call", action: "evict_leader_with_approval",
			params: map[string]any{"store_id": "3"},
			calls:  []string{"POST /pd/api/v1/schedulers"},
			check: func(t *testing.T, p *pd) {
				if got := p.EvictedStores(); !slices.Equal(got, []uint64{3}) {
					t.Errorf("evicted %v, want [3]", got)
				}
			},
		},
		{
			name: "evict_leader on a Disconnected store", action: "evict_leader",
			params: map[string]any{"store_id": "3"},
			setup: func(p *pd) {
				p.StopHeartbeats(3)
				p.Step(start.Add(time.Minute))
			},
			calls:  []string{"POST /pd/api/v1/schedulers"},
			reason: "store 3 (Disconnected, 3 leaders) added",
		},
		{
			name: "evict_leader on a held store changes nothing", action: "evict_leader",
			params: map[string]any{"store_id": "1"},
			setup: func(p *pd) {
				must(mustPD(p).AddEvictLeader(context.Background(), 1))
				p.reset()
			},
			reason: "already held",
		},
		{
			name: "evict_leader refuses the last Up store outside the scheduler", action: "evict_leader",
			params: map[string]any{"store_id": "1"},
			setup: func(p *pd) {
				must(mustPD(p).AddEvictLeader(context.Background(), 2))
				p.StopHeartbeats(3)
				p.Step(start.Add(time.Minute))
				p.reset()
			},
			want:   permanent,
			reason: "no other Up store outside the evict-leader scheduler could take store 1's leaders",
		},
		{
			name: "evict_leader refuses a Tombstone", action: "evict_leader",
			params: map[string]any{"store_id": "3"},
			setup:  func(p *pd) { p.SetStoreState(3, pdapi.MetaTombstone) },
			want:   permanent, reason: "Tombstone",
		},
		{
			name: "evict_leader on an unknown store is permanent", action: "evict_leader",
			params: map[string]any{"store_id": "9"},
			want:   permanent, reason: "store 9 not found",
		},
		{
			name: "evict_leader when PD fails with 500 is transient", action: "evict_leader",
			params: map[string]any{"store_id": "2"},
			setup: func(p *pd) {
				p.fail = func(*http.Request) (int, string) { return 500, `"[PD:etcd:ErrEtcdTxnConflict]etcd transaction failed"` }
			},
			want:  transient,
			calls: []string{"POST /pd/api/v1/schedulers"},
		},
		{
			name: "cancel_evict_leader releases a held store", action: "cancel_evict_leader",
			params: map[string]any{"store_id": "2"},
			setup: func(p *pd) {
				must(mustPD(p).AddEvictLeader(context.Background(), 2))
				p.reset()
			},
			calls: []string{"DELETE /pd/api/v1/schedulers/evict-leader-scheduler-2"},
			check: func(t *testing.T, p *pd) {
				if got := p.EvictedStores(); len(got) != 0 {
					t.Errorf("still evicting %v", got)
				}
			},
			reason: "released",
		},
		{
			name: "cancel_evict_leader on a store not held is done", action: "cancel_evict_leader",
			params: map[string]any{"store_id": "2"},
			reason: "not held",
		},
		{
			name: "transfer_leader creates an operator", action: "transfer_leader",
			params: map[string]any{"region_id": "101", "to_store_id": "3"},
			calls:  []string{"POST /pd/api/v1/operators"},
			check: func(t *testing.T, p *pd) {
				if got := p.LeaderStore(101); got != 3 {
					t.Errorf("region 101 led by store %d, want 3", got)
				}
			},
			reason: "region 101's leader from store 1 to store 3",
		},
		{
			name: "transfer_leader to the current leader is skipped as done", action: "transfer_leader",
			params: map[string]any{"region_id": "101", "to_store_id": "1"},
			reason: "already on store 1",
		},
		{
			name: "transfer_leader of a leaderless region", action: "transfer_leader",
			params: map[string]any{"region_id": "101", "to_store_id": "2"},
			setup:  func(p *pd) { p.SetRegionLeader(101, 0) },
			calls:  []string{"POST /pd/api/v1/operators"},
			reason: "from no leader to store 2",
		},
		{
			name: "transfer_leader to a store without a peer is refused", action: "transfer_leader",
			params: map[string]any{"region_id": "200", "to_store_id": "3"},
			setup:  func(p *pd) { p.AddRegion(200, 1, 1, 2) },
			want:   permanent, reason: "region 200 has no peer on store 3",
		},
		{
			name: "transfer_leader of an unknown region is permanent", action: "transfer_leader",
			params: map[string]any{"region_id": "999", "to_store_id": "3"},
			want:   permanent, reason: "region 999 not found",
		},
		{
			name: "transfer_leader while another operator runs is transient", action: "transfer_leader",
			params: map[string]any{"region_id": "101", "to_store_id": "3"},
			setup: func(p *pd) {
				must(mustPD(p).AddTransferLeader(context.Background(), 101, 2))
				p.reset()
			},
			want:  transient,
			calls: []string{"POST /pd/api/v1/operators"},
		},
		{
			name: "transfer_peer creates an operator", action: "transfer_peer",
			params: map[string]any{"region_id": "200", "from_store_id": "2", "to_store_id": "3"},
			setup:  func(p *pd) { p.AddRegion(200, 1, 1, 2) },
			calls:  []string{"POST /pd/api/v1/operators"},
			check: func(t *testing.T, p *pd) {
				if got := p.RegionStores(200); !slices.Equal(got, []uint64{1, 3}) {
					t.Errorf("region 200 on stores %v, want [1 3]", got)
				}
			},
		},
		{
			name: "transfer_peer already done is skipped", action: "transfer_peer",
			params: map[string]any{"region_id": "200", "from_store_id": "3", "to_store_id": "2"},
			setup:  func(p *pd) { p.AddRegion(200, 1, 1, 2) },
			reason: "already has its replica on store 2",
		},
		{
			name: "transfer_peer onto a store that has one is refused", action: "transfer_peer",
			params: map[string]any{"region_id": "101", "from_store_id": "1", "to_store_id": "2"},
			want:   permanent, reason: "already has a peer on store 2",
		},
		{
			name: "transfer_peer from the same store is refused", action: "transfer_peer",
			params: map[string]any{"region_id": "101", "from_store_id": "2", "to_store_id": "2"},
			want:   permanent, reason: "both 2",
		},
		{
			name: "set_store_limit sets both limits", action: "set_store_limit",
			params: map[string]any{"store_id": "2", "rate": 30.0},
			calls:  []string{"POST /pd/api/v1/store/2/limit"},
			check: func(t *testing.T, p *pd) {
				lim := limits(t, p)[2]
				if lim.AddPeer != 30 || lim.RemovePeer != 30 {
					t.Errorf("limits %+v, want 30/30", lim)
				}
			},
		},
		{
			name: "set_store_limit sets one type", action: "set_store_limit",
			params: map[string]any{"store_id": "2", "rate": 5.5, "type": "remove-peer"},
			calls:  []string{"POST /pd/api/v1/store/2/limit"},
			check: func(t *testing.T, p *pd) {
				lim := limits(t, p)[2]
				if lim.AddPeer != pdfake.DefaultStoreLimit || lim.RemovePeer != 5.5 {
					t.Errorf("limits %+v, want %v/5.5", lim, pdfake.DefaultStoreLimit)
				}
			},
			reason: "remove-peer limit set to 5.5",
		},
		{
			name: "set_store_limit refused by PD is permanent", action: "set_store_limit",
			params: map[string]any{"store_id": "2", "rate": 5.0},
			setup: func(p *pd) {
				p.fail = func(*http.Request) (int, string) {
					return 400, `"current store limit version:v2 not support set limit"`
				}
			},
			want:  permanent,
			calls: []string{"POST /pd/api/v1/store/2/limit"},
		},
	}
	cat, err := tikv.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, found := cat.Action(tc.action)
			if !found {
				t.Fatalf("no action %s in the catalog", tc.action)
			}
			if err := a.ValidateParams(tc.params); err != nil {
				t.Fatalf("the catalog refuses the test's params: %v", err)
			}
			p := newPD(t)
			if tc.setup != nil {
				tc.setup(p)
			}
			req := request(tc.action, tc.params)
			res, err := executor(t, p.url).Execute(context.Background(), req)
			if got := classify(err); got != tc.want {
				t.Fatalf("outcome %v (%v), want %v", got, err, tc.want)
			}
			text := res.Reason
			if err != nil {
				text = err.Error()
			}
			if !strings.Contains(text, tc.reason) {
				t.Errorf("reason %q does not say %q", text, tc.reason)
			}
			var got []string
			for _, c := range p.mutations() {
				got = append(got, c.method+" "+c.path)
				if c.idempotencyKey != req.ID {
					t.Errorf("%s %s sent Idempotency-Key %q, want %q", c.method, c.path, c.idempotencyKey, req.ID)
				}
			}
			if !slices.Equal(got, tc.calls) {
				t.Errorf("mutating calls %q, want %q", got, tc.calls)
			}
			if err == nil {
				var out tikv.Output
				if jerr := json.Unmarshal(res.Output, &out); jerr != nil {
					t.Fatalf("output %s: %v", res.Output, jerr)
				}
				if out.Changed != (len(tc.calls) > 0) {
					t.Errorf("output changed = %v, with calls %v", out.Changed, tc.calls)
				}
			}
			if tc.check != nil {
				p.Step(p.Now().Add(10 * time.Second))
				tc.check(t, p)
			}
			covered[tc.action] = true
		})
	}
	for _, a := range cat.Actions {
		if !covered[a.Name] {
			t.Errorf("no executor case for %s", a.Name)
		}
	}
}

func (p *pd) reset() {
	p.mu.Lock()
	p.calls = nil
	p.mu.Unlock()
}

// mustPD is a client for setting the fake up through its API.
func mustPD(p *pd) *pdapi.Client {
	c, err := pdapi.New(pdapi.Config{URLs: []string{p.url}})
	if err != nil {
		panic(err)
	}
	return c
}

// must panics on a setup error: the fake refused what the test set up.
func must(err error) {
	if err != nil {
		panic(err)
	}
}

func limits(t *testing.T, p *pd) map[uint64]pdapi.StoreLimit {
	t.Helper()
	l, err := mustPD(p).StoreLimits(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestExecuteFailsOverAndClassifiesOutages(t *testing.T) {
	p := newPD(t)
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()

	req := request("evict_leader", map[string]any{"store_id": "2"})
	if _, err := executor(t, deadURL, p.url).Execute(context.Background(), req); err != nil {
		t.Fatalf("through a dead and a live PD URL: %v", err)
	}
	if got := p.EvictedStores(); !slices.Equal(got, []uint64{2}) {
		t.Fatalf("evicted %v", got)
	}

	_, err := executor(t, deadURL).Execute(context.Background(), req)
	if classify(err) != transient {
		t.Fatalf("PD unreachable: %v is not transient", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = executor(t, p.url).Execute(ctx, req)
	if err == nil || classify(err) != permanent || !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: %v, want a permanent context.Canceled", err)
	}
	if _, err := executor(t, p.url).Execute(context.Background(), request("reboot_store", nil)); classify(err) != permanent {
		t.Fatalf("unknown action: %v", err)
	}
}

func TestNewExecutorNeedsAClient(t *testing.T) {
	if _, err := tikv.NewExecutor(nil); err == nil {
		t.Fatal("accepted a nil client")
	}
	c, err := pdapi.New(pdapi.Config{URLs: []string{"pd0:2379"}})
	if err != nil {
		t.Fatal(err)
	}
	if e, err := tikv.NewExecutor(c); err != nil || e == nil {
		t.Fatalf("NewExecutor = %v, %v", e, err)
	}
}
