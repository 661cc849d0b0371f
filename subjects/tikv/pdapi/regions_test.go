package pdapi_test

import (
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/operator-dev/operator/subjects/tikv/pdapi"
)

func TestCheckRegions(t *testing.T) {
	tests := []struct {
		check   pdapi.RegionCheck
		file    string
		count   int
		firstID []uint64
	}{
		{pdapi.CheckDownPeer, "regions_check_down_peer.json", 2, []uint64{8}},
		{pdapi.CheckPendingPeer, "regions_check_pending_peer.json", 2, []uint64{8}},
		{pdapi.CheckMissPeer, "regions_check_miss_peer.json", 1, []uint64{20}},
		{pdapi.CheckOfflinePeer, "regions_check_empty.json", 0, []uint64{}},
	}
	for _, tc := range tests {
		t.Run(string(tc.check), func(t *testing.T) {
			fs, c := newFixtureServer(t, map[string]fixture{"GET /regions/check/" + string(tc.check): {file: tc.file}})
			regs, err := c.CheckRegions(testCtx(t), tc.check)
			if err != nil {
				t.Fatal(err)
			}
			if fs.last().Path != "/pd/api/v1/regions/check/"+string(tc.check) {
				t.Fatalf("path %s", fs.last().Path)
			}
			if regs.Count != tc.count || len(regs.Regions) != tc.count {
				t.Fatalf("count %d, %d regions; want %d", regs.Count, len(regs.Regions), tc.count)
			}
			if got := regs.IDs(1); !slices.Equal(got, tc.firstID) {
				t.Fatalf("IDs(1) = %v, want %v", got, tc.firstID)
			}
		})
	}
}

func TestDownPeerRegion(t *testing.T) {
	_, c := newFixtureServer(t, map[string]fixture{"GET /regions/check/down-peer": {file: "regions_check_down_peer.json"}})
	regs, err := c.CheckRegions(testCtx(t), pdapi.CheckDownPeer)
	if err != nil {
		t.Fatal(err)
	}
	if got := regs.IDs(0); !slices.Equal(got, []uint64{8, 14}) {
		t.Fatalf("IDs(0) = %v", got)
	}
	r := regs.Regions[0]
	if len(r.DownPeers) != 1 || r.DownPeers[0].Peer.StoreID != 3 || r.DownPeers[0].DownSeconds != 2104 {
		t.Fatalf("down peers %+v", r.DownPeers)
	}
	if len(r.PendingPeers) != 1 || r.PendingPeers[0].ID != 11 {
		t.Fatalf("pending peers %+v", r.PendingPeers)
	}
	if r.StartKey != "757365727461626C653A7573657231" || r.EndKey != "" || r.Epoch == nil || r.Epoch.ConfVer != 5 {
		t.Fatalf("keys/epoch: %q %q %+v", r.StartKey, r.EndKey, r.Epoch)
	}
}

func TestRegion(t *testing.T) {
	_, c := newFixtureServer(t, map[string]fixture{
		"GET /region/id/8":  {file: "region_8.json"},
		"GET /region/id/26": {file: "region_leaderless.json"},
		"GET /region/id/30": {file: "region_learner.json"},
		"GET /region/id/99": {status: http.StatusNotFound, file: "errors/region_not_found.json"},
	})
	ctx := testCtx(t)

	r, err := c.Region(ctx, 8)
	if err != nil {
		t.Fatal(err)
	}
	if sid, ok := r.LeaderStoreID(); !ok || sid != 1 || !r.HasLeader() {
		t.Fatalf("region 8 leader: %d %v", sid, ok)
	}
	if p, ok := r.PeerOn(3); !ok || p.ID != 11 {
		t.Fatalf("PeerOn(3) = %+v, %v", p, ok)
	}
	if _, ok := r.PeerOn(4); ok {
		t.Fatal("PeerOn(4) found a peer")
	}

	// A leaderless region still has a leader object, with no id.
	r, err = c.Region(ctx, 26)
	if err != nil {
		t.Fatal(err)
	}
	if r.HasLeader() {
		t.Fatalf("leaderless region has leader %+v", r.Leader)
	}
	if _, ok := r.LeaderStoreID(); ok {
		t.Fatal("leaderless region reports a leader store")
	}

	r, err = c.Region(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := r.PeerOn(3); !p.IsLearner || p.RoleName != "Learner" || p.Role != 1 {
		t.Fatalf("learner peer %+v", p)
	}

	_, err = c.Region(ctx, 99)
	if !errors.Is(err, pdapi.ErrNotFound) || pdapi.IsTransient(err) {
		t.Fatalf("missing region: %v", err)
	}
	if _, err := c.Region(ctx, 0); err == nil {
		t.Fatal("region 0 accepted")
	}
}

func TestRegionCount(t *testing.T) {
	_, c := newFixtureServer(t, map[string]fixture{"GET /regions/count": {file: "regions_count.json"}})
	n, err := c.RegionCount(testCtx(t))
	if err != nil || n != 63 {
		t.Fatalf("RegionCount = %d, %v", n, err)
	}
}
