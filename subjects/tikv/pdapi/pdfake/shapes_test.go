package pdfake_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/operator-dev/operator/subjects/tikv/pdapi"
	"github.com/operator-dev/operator/subjects/tikv/pdapi/pdfake"
)

// TestShapesMatchFixtures: every field the fake sends, with its JSON type,
// appears in the fixtures of PD's real answers (../testdata), so the fake
// cannot drift into a shape PD never sends. Arrays are collapsed to "[]"
// and numeric map keys (store ids) to "<id>".
func TestShapesMatchFixtures(t *testing.T) {
	c, pc := threeStores(t, pdfake.Options{Start: start})
	ctx := testCtx(t)
	c.SetStoreLabels(1, pdapi.StoreLabel{Key: "zone", Value: "z1"})
	c.AddStore(4, "tikv3:20160", "tikv3:20180", 100*gib, 100*gib)
	c.SetStoreState(4, pdapi.MetaTombstone)
	c.AddRegion(140, 0, 1, 2, 3) // leaderless
	c.StopHeartbeats(3)
	c.Step(start.Add(11 * time.Minute)) // down and pending peers
	if err := pc.AddEvictLeader(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := pc.AddTransferLeader(ctx, 104, 1); err != nil {
		t.Fatal(err)
	}
	srv := c.Start(t)

	tests := []struct {
		path     string
		fixtures []string
	}{
		{"/stores", []string{"stores.json", "stores_store_down.json", "stores_offline.json", "stores_evicting.json"}},
		{"/stores/check", []string{"stores_check_all.json", "stores_store_down.json", "stores_evicting.json"}},
		{"/store/1", []string{"store_1_evicting.json"}},
		{"/store/4", []string{"store_tombstone.json"}},
		{"/region/id/101", []string{"region_8.json"}},
		{"/region/id/140", []string{"region_leaderless.json", "region_8.json"}},
		{"/regions/check/down-peer", []string{"regions_check_down_peer.json"}},
		{"/regions/check/extra-peer", []string{"regions_check_empty.json"}},
		{"/regions/count", []string{"regions_count.json"}},
		{"/health", []string{"health.json"}},
		{"/members", []string{"members.json"}},
		{"/config/schedule", []string{"config_schedule.json"}},
		{"/schedulers", []string{"schedulers.json"}},
		{"/scheduler-config/evict-leader-scheduler/list", []string{"scheduler_config_evict_leader.json"}},
		{"/operators?object=1", []string{"operators.json"}},
		{"/operators", []string{"operators_strings.json"}},
		{"/operators/104", []string{"operator_status_running.json"}},
		{"/stores/limit", []string{"stores_limit.json"}},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			got := shape(t, get(t, srv.URL+pdapi.APIPrefix+tc.path, http.StatusOK))
			want := map[string]string{}
			for _, f := range tc.fixtures {
				for k, v := range shape(t, fixture(t, f)) {
					want[k] = v
				}
			}
			var bad []string
			for path, kind := range got {
				if w, ok := want[path]; !ok || (w != kind && w != "null" && kind != "null") {
					bad = append(bad, path+" ("+kind+", fixture: "+w+")")
				}
			}
			sort.Strings(bad)
			if len(bad) > 0 {
				t.Fatalf("fields PD does not send this way:\n%s", strings.Join(bad, "\n"))
			}
			// And the fields an observer relies on are all there.
			for path := range want {
				if strings.HasSuffix(path, ".state_name") || strings.HasSuffix(path, ".capacity") || strings.HasSuffix(path, ".last_heartbeat") {
					if _, ok := got[path]; !ok {
						t.Errorf("fake omits %s", path)
					}
				}
			}
		})
	}
}

// TestErrorBodiesAreJSONStrings: like PD, the fake's errors and mutation
// answers are JSON string literals.
func TestErrorBodiesAreJSONStrings(t *testing.T) {
	c := pdfake.New(pdfake.Options{})
	c.AddStore(1, "a:20160", "a:20180", gib, gib)
	srv := c.Start(t)
	tests := []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"GET", "/store/9", "", 404, "[PD:core:ErrStoreNotFound]store 9 not found"},
		{"GET", "/region/id/9", "", 404, "[PD:region:ErrRegionNotFound]region 9 not found"},
		{"POST", "/operators", `{"name":"transfer-leader","region_id":1,"store_id":2}`, 400, "missing store id to transfer leader to"},
		{"GET", "/operators/9", "", 500, "[PD:operator:ErrOperatorNotFound]operator not found"},
		{"POST", "/schedulers", `{"name":"evict-leader-scheduler","store_id":1}`, 200, "The scheduler is created."},
		{"POST", "/schedulers", `{"name":"evict-leader-scheduler","store_id":1}`, 200, "The scheduler has been applied to the store."},
		{"POST", "/store/1/state?state=Sleepy", "", 400, "invalid state Sleepy"},
		{"POST", "/store/1/limit", `{"rate":0}`, 400, "invalid rate which should be larger than 0"},
		{"GET", "/stores/check?state=sleepy", "", 400, "unknown StoreState: sleepy"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+pdapi.APIPrefix+tc.path, strings.NewReader(tc.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			data, _ := io.ReadAll(resp.Body)
			var s string
			if resp.StatusCode != tc.status || json.Unmarshal(data, &s) != nil || s != tc.want {
				t.Fatalf("%d %s, want %d %q", resp.StatusCode, data, tc.status, tc.want)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("content type %q", ct)
			}
		})
	}
}

func get(t *testing.T, url string, status int) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != status {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, data)
	}
	return data
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// shape maps each field path of a JSON document to its JSON type.
func shape(t *testing.T, data []byte) map[string]string {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, data)
	}
	out := map[string]string{}
	walk(v, "$", out)
	return out
}

func walk(v any, path string, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		out[path] = "object"
		for k, e := range x {
			if strings.Trim(k, "0123456789") == "" {
				k = "<id>"
			}
			walk(e, path+"."+k, out)
		}
	case []any:
		out[path] = "array"
		for _, e := range x {
			walk(e, path+"[]", out)
		}
	case string:
		out[path] = "string"
	case float64:
		out[path] = "number"
	case bool:
		out[path] = "bool"
	default:
		out[path] = "null"
	}
}
