package pdfake_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/operator-dev/operator/subjects/tikv/pdapi"
	"github.com/operator-dev/operator/subjects/tikv/pdapi/pdfake"
)

// TestStateNameFromHeartbeatAge: state_name follows the heartbeat age as
// PD's BuildStoreInfo derives it, on the model's clock.
func TestStateNameFromHeartbeatAge(t *testing.T) {
	tests := []struct {
		name        string
		maxDownTime time.Duration
		silentFor   time.Duration
		meta        pdapi.MetaState
		want        pdapi.StoreState
	}{
		{"heartbeating", 0, 0, pdapi.MetaUp, pdapi.StoreUp},
		{"20 s is still Up", 0, 20 * time.Second, pdapi.MetaUp, pdapi.StoreUp},
		{"21 s is Disconnected", 0, 21 * time.Second, pdapi.MetaUp, pdapi.StoreDisconnected},
		{"29 minutes is still Disconnected, not Down", 0, 29 * time.Minute, pdapi.MetaUp, pdapi.StoreDisconnected},
		{"30 minutes exactly is still Disconnected", 0, 30 * time.Minute, pdapi.MetaUp, pdapi.StoreDisconnected},
		{"past max-store-down-time is Down", 0, 30*time.Minute + time.Second, pdapi.MetaUp, pdapi.StoreDown},
		{"a longer max-store-down-time keeps it Disconnected", time.Hour, 45 * time.Minute, pdapi.MetaUp, pdapi.StoreDisconnected},
		{"an Offline store that stops heartbeating stays Offline", 0, 2 * time.Hour, pdapi.MetaOffline, pdapi.StoreOffline},
		{"Tombstone", 0, 0, pdapi.MetaTombstone, pdapi.StoreTombstone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, pc := threeStores(t, pdfake.Options{Start: start, MaxStoreDownTime: tc.maxDownTime})
			c.SetStoreState(3, tc.meta)
			c.StopHeartbeats(3)
			c.Step(start.Add(tc.silentFor))

			if got := c.StoreState(3); got != tc.want {
				t.Fatalf("model state %q, want %q", got, tc.want)
			}
			s := storeByID(t, pc, 3)
			if s.State() != tc.want || s.Meta.State != tc.meta {
				t.Fatalf("PD says %q (meta %d), want %q (meta %d)", s.State(), s.Meta.State, tc.want, tc.meta)
			}
			age, ok := s.HeartbeatAge(c.Now())
			if tc.meta != pdapi.MetaTombstone && (!ok || age != tc.silentFor) {
				t.Fatalf("heartbeat age %v, %v; want %v", age, ok, tc.silentFor)
			}
			// The other stores kept heartbeating.
			if other := storeByID(t, pc, 1); other.State() != pdapi.StoreUp {
				t.Fatalf("store 1 is %q", other.State())
			}
		})
	}
}

func TestStoresListing(t *testing.T) {
	c, pc := threeStores(t, pdfake.Options{Start: start})
	c.AddStore(4, "tikv3:20160", "tikv3:20180", 100*gib, 100*gib)
	c.SetStoreState(4, pdapi.MetaTombstone)
	c.StopHeartbeats(2)
	c.Step(start.Add(time.Minute))
	ctx := testCtx(t)

	stores, err := pc.Stores(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ids := storeIDs(stores); !slices.Equal(ids, []uint64{1, 2, 3}) {
		t.Fatalf("GET /stores = %v: Tombstones must be hidden", ids)
	}
	all, err := pc.StoresByState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ids := storeIDs(all); !slices.Equal(ids, []uint64{1, 2, 3, 4}) {
		t.Fatalf("GET /stores/check = %v", ids)
	}
	disc, err := pc.StoresByState(ctx, pdapi.StoreDisconnected, pdapi.StoreDown)
	if err != nil {
		t.Fatal(err)
	}
	if ids := storeIDs(disc); !slices.Equal(ids, []uint64{2}) {
		t.Fatalf("disconnected or down = %v", ids)
	}

	s := stores[0]
	if s.Meta.Address != "tikv0:20160" || s.Meta.StatusAddress != "tikv0:20180" {
		t.Fatalf("addresses %q %q", s.Meta.Address, s.Meta.StatusAddress)
	}
	// Sizes pass through PD's humanised strings: 4 significant digits.
	if s.Status.Capacity != 100*gib || s.Status.Available != 60*gib {
		t.Fatalf("sizes %d %d", s.Status.Capacity, s.Status.Available)
	}
	if s.Status.LeaderCount != 3 || s.Status.RegionCount != 9 {
		t.Fatalf("counts leader %d region %d", s.Status.LeaderCount, s.Status.RegionCount)
	}
}

func storeIDs(stores []pdapi.Store) []uint64 {
	var ids []uint64
	for _, s := range stores {
		ids = append(ids, s.ID())
	}
	return ids
}

// TestEvictLeader: the evict-leader scheduler moves leaders off its store
// a batch per step, and removing it twice is fine.
func TestEvictLeader(t *testing.T) {
	c, pc := threeStores(t, pdfake.Options{Start: start, EvictLeaderBatch: 2})
	ctx := testCtx(t)
	c.AddRegion(110, 1, 1, 2, 3) // store 1 now leads 4 regions

	if got, _ := pc.EvictLeaderStores(ctx); len(got) != 0 {
		t.Fatalf("evicting %v before any scheduler", got)
	}
	if err := pc.AddEvictLeader(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := pc.AddEvictLeader(ctx, 1); err != nil { // applied again: fine
		t.Fatal(err)
	}
	names, err := pc.Schedulers(ctx)
	if err != nil || !slices.Contains(names, pdapi.EvictLeaderScheduler) {
		t.Fatalf("schedulers %v, %v", names, err)
	}
	if got, err := pc.EvictLeaderStores(ctx); err != nil || !slices.Equal(got, []uint64{1}) {
		t.Fatalf("EvictLeaderStores = %v, %v", got, err)
	}
	if s := storeByID(t, pc, 1); !s.Status.PauseLeaderTransferIn {
		t.Fatal("evicted store does not pause leader transfer in")
	}

	// Nothing moves until the scheduler runs; then two leaders per step.
	want := []int{4, 2, 0, 0}
	for step, w := range want {
		if step > 0 {
			c.Step(start.Add(time.Duration(step) * 10 * time.Second))
		}
		if got := storeByID(t, pc, 1).Status.LeaderCount; got != w {
			t.Fatalf("after %d steps store 1 leads %d regions, want %d", step, got, w)
		}
	}
	if n := c.LeaderCount(2) + c.LeaderCount(3); n != 10 {
		t.Fatalf("stores 2 and 3 lead %d regions, want all 10", n)
	}

	if err := pc.RemoveEvictLeader(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := pc.RemoveEvictLeader(ctx, 1); err != nil {
		t.Fatalf("removing an absent evict-leader scheduler: %v", err)
	}
	if got, err := pc.EvictLeaderStores(ctx); err != nil || len(got) != 0 {
		t.Fatalf("EvictLeaderStores after removal = %v, %v", got, err)
	}
	if names, _ := pc.Schedulers(ctx); slices.Contains(names, pdapi.EvictLeaderScheduler) {
		t.Fatal("the scheduler outlived its last store")
	}
}

// TestEvictLeaderTargets: leaders go only to live, non-evicted stores, and
// stay put when there is none.
func TestEvictLeaderTargets(t *testing.T) {
	c, pc := threeStores(t, pdfake.Options{Start: start, EvictLeaderBatch: 10})
	ctx := testCtx(t)
	c.StopHeartbeats(2)
	c.Step(start.Add(time.Minute)) // store 2 Disconnected
	for _, id := range []uint64{1, 3} {
		if err := pc.AddEvictLeader(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	c.Step(start.Add(2 * time.Minute))
	if n := c.LeaderCount(1) + c.LeaderCount(3); n != 6 {
		t.Fatalf("leaders moved to a Disconnected store: stores 1 and 3 lead %d", n)
	}
	c.ResumeHeartbeats(2)
	c.Step(start.Add(3 * time.Minute))
	if got := c.LeaderCount(2); got != 9 {
		t.Fatalf("store 2 leads %d regions, want 9", got)
	}
}

func TestTransferLeader(t *testing.T) {
	c, pc := threeStores(t, pdfake.Options{Start: start})
	ctx := testCtx(t)
	c.AddRegion(120, 1, 1, 2) // no peer on store 3

	if err := pc.AddTransferLeader(ctx, 101, 2); err != nil {
		t.Fatal(err)
	}
	op, err := pc.OperatorStatus(ctx, 101)
	if err != nil || op.State != pdapi.RegionOpRunning {
		t.Fatalf("status %+v, %v", op, err)
	}
	ops, err := pc.Operators(ctx)
	if err != nil || len(ops) != 1 || ops[0].RegionID != 101 || ops[0].Desc != "admin-transfer-leader" {
		t.Fatalf("operators %+v, %v", ops, err)
	}
	if err := pc.AddTransferLeader(ctx, 101, 3); !errors.Is(err, pdapi.ErrOperatorExists) {
		t.Fatalf("second operator: %v", err)
	}
	if r, _ := pc.Region(ctx, 101); r.Leader.StoreID != 1 {
		t.Fatal("the operator applied before a step")
	}

	c.Step(start.Add(10 * time.Second))
	r, err := pc.Region(ctx, 101)
	if err != nil {
		t.Fatal(err)
	}
	if sid, ok := r.LeaderStoreID(); !ok || sid != 2 {
		t.Fatalf("leader on %d, want 2", sid)
	}
	if op, err := pc.OperatorStatus(ctx, 101); err != nil || op.State != pdapi.RegionOpSuccess {
		t.Fatalf("status after step %+v, %v", op, err)
	}
	if ops, _ := pc.Operators(ctx); len(ops) != 0 {
		t.Fatalf("finished operator still listed: %+v", ops)
	}

	tests := []struct {
		name      string
		region    uint64
		to        uint64
		want      error
		transient bool
	}{
		{"leader already there", 101, 2, nil, false},
		{"no voter on the target", 120, 3, nil, false},
		{"no such region", 999, 2, pdapi.ErrNotFound, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := pc.AddTransferLeader(ctx, tc.region, tc.to)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || pdapi.IsTransient(err) != tc.transient {
				t.Fatalf("err %v (transient %v)", err, pdapi.IsTransient(err))
			}
		})
	}

	// An unhealthy target may recover: PD's refusal is transient.
	c.StopHeartbeats(3)
	c.Step(start.Add(time.Minute))
	if err := pc.AddTransferLeader(ctx, 102, 3); err == nil || !pdapi.IsTransient(err) {
		t.Fatalf("transfer to a Disconnected store: %v", err)
	}

	// Records are kept for 10 minutes.
	c.Step(start.Add(20 * time.Minute))
	if _, err := pc.OperatorStatus(ctx, 101); !errors.Is(err, pdapi.ErrNotFound) {
		t.Fatalf("old record: %v", err)
	}
}

func TestTransferPeer(t *testing.T) {
	c, pc := threeStores(t, pdfake.Options{Start: start})
	ctx := testCtx(t)
	c.AddStore(4, "tikv3:20160", "tikv3:20180", 100*gib, 100*gib)
	c.AddStore(5, "tikv4:20160", "tikv4:20180", 100*gib, 100*gib)
	c.SetStoreState(5, pdapi.MetaTombstone)

	if err := pc.AddTransferPeer(ctx, 101, 1, 4); err != nil { // region 101's leader is on store 1
		t.Fatal(err)
	}
	c.Step(start.Add(10 * time.Second))
	if got := c.RegionStores(101); !slices.Equal(got, []uint64{2, 3, 4}) {
		t.Fatalf("peers on %v, want [2 3 4]", got)
	}
	if got := c.LeaderStore(101); got != 4 {
		t.Fatalf("leader on %d: moving the leader's peer moves the leader", got)
	}
	r, _ := pc.Region(ctx, 101)
	if r.Epoch == nil || r.Epoch.ConfVer != 7 {
		t.Fatalf("epoch %+v, want conf_ver bumped", r.Epoch)
	}

	c.StopHeartbeats(4)
	c.Step(start.Add(11 * time.Minute))
	tests := []struct {
		name      string
		region    uint64
		from, to  uint64
		want      error
		transient bool
	}{
		{"no peer on the source", 101, 1, 4, nil, false},
		{"target already has a peer", 101, 2, 3, nil, false},
		{"target is Tombstone", 101, 2, 5, pdapi.ErrStoreRemoved, false},
		{"target is unknown", 101, 2, 9, pdapi.ErrNotFound, false},
		{"no such region", 999, 2, 4, pdapi.ErrNotFound, false},
		{"target down for 10 minutes may come back", 102, 3, 4, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := pc.AddTransferPeer(ctx, tc.region, tc.from, tc.to)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || pdapi.IsTransient(err) != tc.transient {
				t.Fatalf("err %v (transient %v)", err, pdapi.IsTransient(err))
			}
		})
	}
}

// TestRegionChecks: pending, down, missing and offline peers, and a
// leaderless region, all derived from the model.
func TestRegionChecks(t *testing.T) {
	c, pc := threeStores(t, pdfake.Options{Start: start})
	ctx := testCtx(t)
	c.AddRegion(130, 1, 1, 2) // two peers of three
	c.AddRegion(131, 1, 1, 2, 3)
	c.SetRegionLeader(131, 0)

	check := func(kind pdapi.RegionCheck) []uint64 {
		t.Helper()
		regs, err := pc.CheckRegions(ctx, kind)
		if err != nil {
			t.Fatal(err)
		}
		if regs.Count != len(regs.Regions) {
			t.Fatalf("%s: count %d, %d regions", kind, regs.Count, len(regs.Regions))
		}
		return regs.IDs(0)
	}
	if got := check(pdapi.CheckMissPeer); !slices.Equal(got, []uint64{130}) {
		t.Fatalf("miss-peer %v", got)
	}
	if got := check(pdapi.CheckPendingPeer); len(got) != 0 {
		t.Fatalf("pending-peer %v on a healthy cluster", got)
	}
	r, err := pc.Region(ctx, 131)
	if err != nil || r.HasLeader() {
		t.Fatalf("leaderless region %+v, %v", r.Leader, err)
	}

	c.StopHeartbeats(3)
	c.Step(start.Add(time.Minute))
	// Regions with a follower on store 3: 101-106 (led by 1 and 2) and 131.
	want := []uint64{101, 102, 103, 104, 105, 106, 131}
	if got := check(pdapi.CheckPendingPeer); !slices.Equal(got, want) {
		t.Fatalf("pending-peer %v, want %v", got, want)
	}
	if got := check(pdapi.CheckDownPeer); len(got) != 0 {
		t.Fatalf("down-peer %v after a minute", got)
	}
	c.Step(start.Add(11 * time.Minute))
	if got := check(pdapi.CheckDownPeer); !slices.Equal(got, want) {
		t.Fatalf("down-peer %v, want %v", got, want)
	}
	r, _ = pc.Region(ctx, 101)
	if len(r.DownPeers) != 1 || r.DownPeers[0].Peer.StoreID != 3 || r.DownPeers[0].DownSeconds != 660 {
		t.Fatalf("down peers %+v", r.DownPeers)
	}

	c.ResumeHeartbeats(3)
	c.AddStore(4, "tikv3:20160", "tikv3:20180", 100*gib, 100*gib)
	if err := pc.SetStoreState(ctx, 2, pdapi.StoreOffline); err != nil {
		t.Fatal(err)
	}
	if got := check(pdapi.CheckOfflinePeer); len(got) != 11 {
		t.Fatalf("offline-peer %v, want every region", got)
	}
}

func TestStoreStateAPI(t *testing.T) {
	c, pc := threeStores(t, pdfake.Options{Start: start})
	ctx := testCtx(t)
	if err := pc.SetStoreState(ctx, 3, pdapi.StoreOffline); err == nil || pdapi.IsTransient(err) {
		t.Fatalf("offlining one of three stores: %v", err)
	}
	c.AddStore(4, "tikv3:20160", "tikv3:20180", 100*gib, 100*gib)
	if err := pc.SetStoreState(ctx, 4, pdapi.StoreOffline); err != nil {
		t.Fatal(err)
	}
	if err := pc.SetStoreState(ctx, 4, pdapi.StoreOffline); err != nil {
		t.Fatalf("offlining again: %v", err)
	}
	if got := storeByID(t, pc, 4).State(); got != pdapi.StoreOffline {
		t.Fatalf("state %q", got)
	}
	// Store 4 holds no peer: the next step buries it.
	c.Step(start.Add(time.Second))
	if got := storeByID(t, pc, 4).State(); got != pdapi.StoreTombstone {
		t.Fatalf("state %q, want Tombstone", got)
	}
	if err := pc.SetStoreState(ctx, 4, pdapi.StoreUp); !errors.Is(err, pdapi.ErrStoreRemoved) {
		t.Fatalf("reviving a Tombstone: %v", err)
	}
	if _, err := pc.Store(ctx, 9); !errors.Is(err, pdapi.ErrNotFound) {
		t.Fatalf("unknown store: %v", err)
	}
}

func TestStoreLimitAPI(t *testing.T) {
	_, pc := threeStores(t, pdfake.Options{Start: start})
	ctx := testCtx(t)
	if err := pc.SetStoreLimit(ctx, 2, 40, pdapi.LimitAddPeer); err != nil {
		t.Fatal(err)
	}
	limits, err := pc.StoreLimits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if limits[2] != (pdapi.StoreLimit{AddPeer: 40, RemovePeer: 15}) || limits[1] != (pdapi.StoreLimit{AddPeer: 15, RemovePeer: 15}) {
		t.Fatalf("limits %+v", limits)
	}
	if err := pc.SetStoreLimit(ctx, 9, 40, pdapi.LimitBoth); !errors.Is(err, pdapi.ErrNotFound) {
		t.Fatalf("unknown store: %v", err)
	}
}

func TestMembersHealthConfig(t *testing.T) {
	c, pc := threeStores(t, pdfake.Options{Start: start})
	ctx := testCtx(t)
	c.SetMemberHealth("pd2", false)
	c.SetPDLeader("pd1")
	c.SetMaxStoreDownTime(time.Hour)

	health, err := pc.Health(ctx)
	if err != nil || len(health) != 3 || !health[0].Health || health[2].Health {
		t.Fatalf("health %+v, %v", health, err)
	}
	m, err := pc.Members(ctx)
	if err != nil || m.Leader == nil || m.Leader.Name != "pd1" || len(m.Members) != 3 {
		t.Fatalf("members %+v, %v", m, err)
	}
	cfg, err := pc.ScheduleConfig(ctx)
	if err != nil || cfg.MaxStoreDownTime.Duration != time.Hour || !cfg.EnableRemoveDownReplica {
		t.Fatalf("config %+v, %v", cfg, err)
	}
}

func TestNotBootstrapped(t *testing.T) {
	c := pdfake.New(pdfake.Options{})
	pc := client(t, c.Start(t).URL)
	ctx := testCtx(t)
	if _, err := pc.Stores(ctx); !errors.Is(err, pdapi.ErrNotBootstrapped) {
		t.Fatalf("stores on an empty cluster: %v", err)
	}
	if _, err := pc.CheckRegions(ctx, pdapi.CheckDownPeer); !errors.Is(err, pdapi.ErrNotBootstrapped) {
		t.Fatalf("regions on an empty cluster: %v", err)
	}
	if _, err := pc.Health(ctx); err != nil {
		t.Fatalf("health needs no TiKV: %v", err)
	}
}

// TestFollowerFailover: the client gets through unreachable and leaderless
// members to one that answers, and back again when that one goes.
func TestFollowerFailover(t *testing.T) {
	c, _ := threeStores(t, pdfake.Options{Start: start})
	leader := c.Start(t)
	down := c.StartFollower(t, pdfake.FollowerUnreachable)
	lost := c.StartFollower(t, pdfake.FollowerNoLeader)
	pc := client(t, down.URL, lost.URL, leader.URL)
	ctx := testCtx(t)

	stores, err := pc.Stores(ctx)
	if err != nil || len(stores) != 3 {
		t.Fatalf("stores %d, %v", len(stores), err)
	}
	if pc.CurrentURL() != leader.URL || down.Requests() != 1 || lost.Requests() != 1 {
		t.Fatalf("current %s, hits %d %d", pc.CurrentURL(), down.Requests(), lost.Requests())
	}
	if _, err := pc.Stores(ctx); err != nil || down.Requests() != 1 {
		t.Fatalf("second call did not go straight to the leader: %v", err)
	}

	leader.Close()
	lost.SetMode(pdfake.FollowerProxy)
	if err := pc.AddEvictLeader(ctx, 2); err != nil {
		t.Fatalf("after the leader went away: %v", err)
	}
	if pc.CurrentURL() != lost.URL {
		t.Fatalf("current %s, want %s", pc.CurrentURL(), lost.URL)
	}
	if got := c.EvictedStores(); !slices.Equal(got, []uint64{2}) {
		t.Fatalf("evicted %v", got)
	}
}

// TestConcurrentUse runs reads and writes against the fake while the
// model steps (meaningful under -race).
func TestConcurrentUse(t *testing.T) {
	c, pc := threeStores(t, pdfake.Options{Start: start})
	ctx := testCtx(t)
	done := make(chan error, 4)
	for i := range 4 {
		go func() {
			for j := range 20 {
				var err error
				switch (i + j) % 4 {
				case 0:
					_, err = pc.Stores(ctx)
				case 1:
					_, err = pc.CheckRegions(ctx, pdapi.CheckPendingPeer)
				case 2:
					err = pc.AddEvictLeader(ctx, uint64(i%3+1))
				case 3:
					err = pc.RemoveEvictLeader(ctx, uint64(i%3+1))
				}
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for s := range 20 {
		c.Step(start.Add(time.Duration(s) * time.Second))
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
