package pdapi_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/operator-dev/operator/subjects/tikv/pdapi"
)

func TestStoresHealthy(t *testing.T) {
	_, c := newFixtureServer(t, map[string]fixture{"GET /stores": {file: "stores.json"}})
	stores, err := c.Stores(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(stores) != 3 {
		t.Fatalf("got %d stores, want 3", len(stores))
	}
	s := stores[0]
	if s.ID() != 1 || s.State() != pdapi.StoreUp || s.Meta.State != pdapi.MetaUp {
		t.Errorf("store 1: id %d state %q meta state %d", s.ID(), s.State(), s.Meta.State)
	}
	if s.Meta.Address != "tikv0:20160" || s.Meta.StatusAddress != "tikv0:20180" {
		t.Errorf("addresses: gRPC %q, status %q", s.Meta.Address, s.Meta.StatusAddress)
	}
	if len(s.Meta.Labels) != 1 || s.Meta.Labels[0] != (pdapi.StoreLabel{Key: "zone", Value: "z1"}) {
		t.Errorf("labels %+v", s.Meta.Labels)
	}
	// Humanised sizes become bytes (to PD's 4 significant digits).
	if s.Status.Capacity != 62727997358 || s.Status.Available != 44098576712 || s.Status.UsedSize != 325687706 {
		t.Errorf("sizes: capacity %d available %d used %d", s.Status.Capacity, s.Status.Available, s.Status.UsedSize)
	}
	if s.Status.LeaderCount != 7 || s.Status.RegionCount != 21 || s.Status.RegionScore != 1489.25 {
		t.Errorf("counts: %+v", s.Status)
	}
	if s.Status.Uptime == nil || s.Status.Uptime.Duration != 59*time.Minute+55123456789*time.Nanosecond {
		t.Errorf("uptime %v", s.Status.Uptime)
	}
	if s.Status.LastHeartbeatTS == nil || !s.Status.LastHeartbeatTS.Equal(time.Date(2026, 1, 1, 0, 59, 55, 123456789, time.UTC)) {
		t.Errorf("last_heartbeat_ts %v", s.Status.LastHeartbeatTS)
	}
}

// TestLastHeartbeatIsUnixNanoseconds: last_heartbeat is unix ns, and the age
// is measured against the caller's clock.
func TestLastHeartbeatIsUnixNanoseconds(t *testing.T) {
	_, c := newFixtureServer(t, map[string]fixture{"GET /stores": {file: "stores.json"}})
	stores, err := c.Stores(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	hb := time.Date(2026, 1, 1, 0, 59, 55, 123456789, time.UTC)
	if got := stores[0].LastHeartbeat(); !got.Equal(hb) {
		t.Fatalf("LastHeartbeat() = %v, want %v", got, hb)
	}
	tests := []struct {
		name string
		now  time.Time
		want time.Duration
	}{
		{"forty seconds later", hb.Add(40 * time.Second), 40 * time.Second},
		{"same instant", hb, 0},
		{"caller clock slightly behind PD", hb.Add(-time.Second), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			age, ok := stores[0].HeartbeatAge(tc.now)
			if !ok || age != tc.want {
				t.Fatalf("HeartbeatAge = %v, %v; want %v, true", age, ok, tc.want)
			}
		})
	}
	var never pdapi.Store
	if _, ok := never.HeartbeatAge(hb); ok {
		t.Fatal("a store without last_heartbeat has an age")
	}
}

// TestStoreStateNames covers every state_name PD sends, from fixtures of
// the situations that produce them.
func TestStoreStateNames(t *testing.T) {
	tests := []struct {
		name      string
		route     string
		file      string
		call      func(c *pdapi.Client, t *testing.T) ([]pdapi.Store, error)
		id        uint64
		wantState pdapi.StoreState
		wantMeta  pdapi.MetaState
		wantLead  int
	}{
		{"killed 35 minutes ago is Down", "GET /stores", "stores_store_down.json",
			func(c *pdapi.Client, t *testing.T) ([]pdapi.Store, error) { return c.Stores(testCtx(t)) },
			3, pdapi.StoreDown, pdapi.MetaUp, 0},
		{"killed 40 seconds ago is Disconnected", "GET /stores/check?state=disconnected", "stores_check_disconnected.json",
			func(c *pdapi.Client, t *testing.T) ([]pdapi.Store, error) {
				return c.StoresByState(testCtx(t), pdapi.StoreDisconnected)
			},
			3, pdapi.StoreDisconnected, pdapi.MetaUp, 7},
		{"draining is Offline", "GET /stores", "stores_offline.json",
			func(c *pdapi.Client, t *testing.T) ([]pdapi.Store, error) { return c.Stores(testCtx(t)) },
			3, pdapi.StoreOffline, pdapi.MetaOffline, 2},
		{"removed is Tombstone, seen only through stores/check", "GET /stores/check?", "stores_check_all.json",
			func(c *pdapi.Client, t *testing.T) ([]pdapi.Store, error) { return c.StoresByState(testCtx(t)) },
			4, pdapi.StoreTombstone, pdapi.MetaTombstone, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, c := newFixtureServer(t, map[string]fixture{tc.route: {file: tc.file}})
			stores, err := tc.call(c, t)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range stores {
				if s.ID() != tc.id {
					if !s.State().Known() {
						t.Errorf("store %d has unknown state %q", s.ID(), s.State())
					}
					continue
				}
				if s.State() != tc.wantState || s.Meta.State != tc.wantMeta || s.Status.LeaderCount != tc.wantLead {
					t.Fatalf("store %d: state %q meta %d leaders %d; want %q %d %d",
						s.ID(), s.State(), s.Meta.State, s.Status.LeaderCount, tc.wantState, tc.wantMeta, tc.wantLead)
				}
				return
			}
			t.Fatalf("store %d missing", tc.id)
		})
	}
}

func TestStoresByStateQuery(t *testing.T) {
	fs, c := newFixtureServer(t, map[string]fixture{"GET /stores/check": {file: "stores_check_disconnected.json"}})
	if _, err := c.StoresByState(testCtx(t), pdapi.StoreDown, pdapi.StoreDisconnected); err != nil {
		t.Fatal(err)
	}
	if got, want := fs.last().Query, "state=down&state=disconnected"; got != want {
		t.Fatalf("query %q, want %q", got, want)
	}
}

func TestStore(t *testing.T) {
	_, c := newFixtureServer(t, map[string]fixture{
		"GET /store/1": {file: "store_1_evicting.json"},
		"GET /store/4": {file: "store_tombstone.json"},
		"GET /store/9": {status: http.StatusNotFound, file: "errors/store_not_found.json"},
	})
	ctx := testCtx(t)
	s, err := c.Store(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Status.PauseLeaderTransferIn || s.Status.LeaderCount != 0 {
		t.Errorf("evicting store: %+v", s.Status)
	}
	s, err = c.Store(ctx, 4)
	if err != nil {
		t.Fatal(err)
	}
	if s.State() != pdapi.StoreTombstone || s.Meta.NodeState != 3 || s.Status.UsedSize != 0 {
		t.Errorf("tombstone store: %+v", s)
	}

	_, err = c.Store(ctx, 9)
	var pe *pdapi.Error
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want *pdapi.Error", err)
	}
	if pe.Status != http.StatusNotFound || pe.Message != "[PD:core:ErrStoreNotFound]store 9 not found" {
		t.Fatalf("error status %d message %q", pe.Status, pe.Message)
	}
	if !errors.Is(err, pdapi.ErrNotFound) || pdapi.IsTransient(err) {
		t.Fatalf("store not found: Is(ErrNotFound)=%v transient=%v", errors.Is(err, pdapi.ErrNotFound), pdapi.IsTransient(err))
	}
}

func TestSetStoreState(t *testing.T) {
	fs, c := newFixtureServer(t, map[string]fixture{
		"POST /store/3/state?state=Offline": {file: "store_state_updated.json"},
		"POST /store/3/state?state=Up":      {file: "store_state_updated.json"},
		"POST /store/2/state?state=Offline": {status: http.StatusBadRequest, file: "errors/stores_not_enough.json"},
		"POST /store/4/state?state=Up":      {status: http.StatusGone, file: "errors/store_removed.json"},
	})
	ctx := testCtx(t)
	for _, st := range []pdapi.StoreState{pdapi.StoreOffline, pdapi.StoreUp} {
		if err := c.SetStoreState(ctx, 3, st); err != nil {
			t.Fatalf("set %s: %v", st, err)
		}
	}
	if got := fs.last(); got.Method != http.MethodPost || got.Path != "/pd/api/v1/store/3/state" || got.Query != "state=Up" {
		t.Fatalf("request %+v", got)
	}

	err := c.SetStoreState(ctx, 2, pdapi.StoreOffline)
	if !errors.As(err, new(*pdapi.Error)) || pdapi.IsTransient(err) {
		t.Fatalf("too few stores: err %v transient %v", err, pdapi.IsTransient(err))
	}
	err = c.SetStoreState(ctx, 4, pdapi.StoreUp)
	if !errors.Is(err, pdapi.ErrStoreRemoved) || pdapi.IsTransient(err) {
		t.Fatalf("tombstone: err %v", err)
	}

	n := len(fs.requests())
	for _, st := range []pdapi.StoreState{pdapi.StoreTombstone, pdapi.StoreDown, "sleepy"} {
		if err := c.SetStoreState(ctx, 3, st); err == nil {
			t.Errorf("setting %q succeeded", st)
		}
	}
	if len(fs.requests()) != n {
		t.Fatal("an unsettable state was sent to PD")
	}
}

func TestSetStoreLimit(t *testing.T) {
	fs, c := newFixtureServer(t, map[string]fixture{"POST /store/3/limit": {file: "store_limit_updated.json"}})
	ctx := testCtx(t)
	tests := []struct {
		typ  pdapi.StoreLimitType
		body string
	}{
		{pdapi.LimitBoth, `{"rate":30}`},
		{pdapi.LimitAddPeer, `{"rate":30,"type":"add-peer"}`},
		{pdapi.LimitRemovePeer, `{"rate":30,"type":"remove-peer"}`},
	}
	for _, tc := range tests {
		if err := c.SetStoreLimit(ctx, 3, 30, tc.typ); err != nil {
			t.Fatal(err)
		}
		if got := fs.last().Body; got != tc.body {
			t.Errorf("type %q: body %s, want %s", tc.typ, got, tc.body)
		}
	}
	if err := c.SetStoreLimit(ctx, 3, 0, pdapi.LimitBoth); err == nil {
		t.Error("rate 0 accepted")
	}
}

func TestStoreLimits(t *testing.T) {
	_, c := newFixtureServer(t, map[string]fixture{"GET /stores/limit": {file: "stores_limit.json"}})
	limits, err := c.StoreLimits(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(limits) != 3 || limits[3] != (pdapi.StoreLimit{AddPeer: 30, RemovePeer: 15}) {
		t.Fatalf("limits %+v", limits)
	}
}
