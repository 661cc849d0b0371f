package pdapi_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/operator-dev/operator/subjects/tikv/pdapi"
)

// TestHealth: /health is 200 even with an unhealthy member; the client
// reports each member's flag.
func TestHealth(t *testing.T) {
	_, c := newFixtureServer(t, map[string]fixture{"GET /health": {file: "health.json"}})
	health, err := c.Health(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, m := range health {
		got[m.Name] = m.Health
	}
	if len(got) != 3 || !got["pd0"] || !got["pd1"] || got["pd2"] {
		t.Fatalf("health %+v", health)
	}
	if health[2].MemberID != 13247128104827736822 { // above MaxInt64
		t.Fatalf("member id %d", health[2].MemberID)
	}
}

func TestMembers(t *testing.T) {
	_, c := newFixtureServer(t, map[string]fixture{"GET /members": {file: "members.json"}})
	m, err := c.Members(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Members) != 3 || m.Leader == nil || m.Leader.Name != "pd0" || m.EtcdLeader == nil || m.EtcdLeader.Name != "pd0" {
		t.Fatalf("members %+v", m)
	}
	if m.Header == nil || m.Header.ClusterID != 7456049830285843482 {
		t.Fatalf("header %+v", m.Header)
	}
	if m.Members[1].ClientURLs[0] != "http://pd1:2379" || m.Members[1].BinaryVersion != "v8.5.5" {
		t.Fatalf("member 1 %+v", m.Members[1])
	}
}

func TestScheduleConfig(t *testing.T) {
	_, c := newFixtureServer(t, map[string]fixture{"GET /config/schedule": {file: "config_schedule.json"}})
	cfg, err := c.ScheduleConfig(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxStoreDownTime.Duration != 30*time.Minute {
		t.Errorf("max-store-down-time %v", cfg.MaxStoreDownTime)
	}
	if cfg.LeaderScheduleLimit != 4 || cfg.RegionScheduleLimit != 2048 || cfg.ReplicaScheduleLimit != 64 {
		t.Errorf("limits %+v", cfg)
	}
	// PD writes these booleans as strings.
	if !cfg.EnableRemoveDownReplica || !cfg.EnableReplaceOfflineReplica || !cfg.EnableMakeUpReplica || cfg.HaltScheduling {
		t.Errorf("replica flags %+v", cfg)
	}
	if cfg.StoreLimitVersion != "v1" || cfg.LowSpaceRatio != 0.8 {
		t.Errorf("store-limit-version %q low-space-ratio %v", cfg.StoreLimitVersion, cfg.LowSpaceRatio)
	}
}

func TestFlexBool(t *testing.T) {
	tests := []struct {
		in   string
		want bool
		ok   bool
	}{
		{`"true"`, true, true}, {`"false"`, false, true}, {`true`, true, true}, {`false`, false, true},
		{`null`, false, true}, {`"yes"`, false, false}, {`1`, false, false},
	}
	for _, tc := range tests {
		var b pdapi.FlexBool
		err := json.Unmarshal([]byte(tc.in), &b)
		if (err == nil) != tc.ok || bool(b) != tc.want {
			t.Errorf("FlexBool(%s) = %v, %v", tc.in, b, err)
		}
	}
	if out, _ := json.Marshal(pdapi.FlexBool(true)); string(out) != `"true"` {
		t.Errorf("marshal = %s", out)
	}
}
