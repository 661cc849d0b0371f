package tikv_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/operator-dev/operator/schemas"
	"github.com/operator-dev/operator/statuspage"
	"github.com/operator-dev/operator/subjects/tikv"
	"github.com/operator-dev/operator/subjects/tikv/pdapi/pdfake"
)

// TestViews makes the status page's tables from a real observation of a
// cluster that lost a store and a PD member: the lost store is the first
// row and marked bad, the regions it held are marked, and the
// unhealthy member is marked.
func TestViews(t *testing.T) {
	c := newCluster(t, pdfake.Options{MaxStoreDownTime: time.Minute})
	c.StopHeartbeats(3)
	c.SetMemberHealth("pd2", false)
	c.Step(start.Add(2 * time.Minute))
	ob := observe(t, newObserver(t, c, ""))
	obs, err := json.Marshal(schemas.Observation{Subject: tikv.Name, Instance: "c1", ObservedAt: start,
		Observer: schemas.ObserverInfo{Errors: []schemas.ObserverError{}}, State: ob.json})
	if err != nil {
		t.Fatal(err)
	}
	views, err := statuspage.CompileViews(tikv.Name, tikv.Subject().Views)
	if err != nil {
		t.Fatal(err)
	}
	tables := map[string]statuspage.Table{}
	for _, tb := range views.Tables(obs) {
		if tb.Error != "" {
			t.Fatalf("table %s: %s", tb.Name, tb.Error)
		}
		tables[tb.Name] = tb
	}
	stores := tables["stores"]
	if len(stores.Rows) != 3 {
		t.Fatalf("stores: %d rows, want 3: %+v", len(stores.Rows), stores.Rows)
	}
	if first := stores.Rows[0]; first.Cells[0] != float64(3) || first.Cells[1] != "Down" || first.Status != "bad" {
		t.Errorf("first store row %+v, want store 3, Down, bad", first)
	}
	for _, r := range stores.Rows[1:] {
		if r.Cells[1] != "Up" || r.Status != "ok" {
			t.Errorf("store row %+v, want Up and ok", r)
		}
		if avail, ok := r.Cells[6].(float64); !ok || avail != 60 {
			t.Errorf("available %v, want 60 (%%)", r.Cells[6])
		}
	}
	regions := tables["regions"]
	if len(regions.Rows) != 1 || regions.Rows[0].Cells[0] != float64(9) {
		t.Fatalf("regions %+v, want one row counting 9 regions", regions.Rows)
	}
	if r := regions.Rows[0]; r.Status == "ok" {
		t.Errorf("regions with a lost store's peers marked %q: %+v", r.Status, r)
	}
	var unhealthy int
	for _, r := range tables["members"].Rows {
		if r.Cells[2] == "unhealthy" {
			unhealthy++
			if r.Cells[0] != "pd2" || r.Status != "bad" {
				t.Errorf("unhealthy member row %+v, want pd2 marked bad", r)
			}
		}
	}
	if unhealthy != 1 {
		t.Errorf("%d unhealthy members, want 1: %+v", unhealthy, tables["members"].Rows)
	}
}
