package actuators

import (
	"strings"
	"testing"
	"time"
)

func TestBudgetAdmit(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	l := limits{max: 2, per: time.Hour}
	action := func(id, target string, at time.Time, cooldown time.Duration) budgetEntry {
		e := budgetEntry{RequestID: id, Kind: chargeAction, Instance: "i1", Action: "poke", Target: target, At: at}
		if cooldown > 0 {
			e.CooldownUntil = at.Add(cooldown)
		}
		return e
	}
	tests := []struct {
		name        string
		entries     []budgetEntry
		entry       budgetEntry
		cooldown    time.Duration
		now         time.Time
		wantRefusal string
		wantAdded   bool
		wantLeft    int
	}{
		{name: "empty window admits", entry: action("r1", "a", time.Time{}, 0), now: t0, wantAdded: true, wantLeft: 1},
		{name: "last slot admits", entries: []budgetEntry{action("r0", "b", t0.Add(-time.Minute), 0)},
			entry: action("r1", "a", time.Time{}, 0), now: t0, wantAdded: true, wantLeft: 0},
		{name: "full window refuses with the next slot",
			entries: []budgetEntry{action("r0", "b", t0.Add(-50*time.Minute), 0), action("r9", "c", t0.Add(-time.Minute), 0)},
			entry:   action("r1", "a", time.Time{}, 0), now: t0,
			wantRefusal: "budget: 2 of 2 actions on this subject used in the last 1h0m0s (failed verifications count); next slot at 2026-03-01T12:10:00Z"},
		{name: "failed verifications count",
			entries: []budgetEntry{action("r0", "b", t0.Add(-time.Minute), 0),
				{RequestID: "r0", Kind: chargeFailedVerification, Instance: "i1", Action: "poke", At: t0.Add(-time.Second)}},
			entry: action("r1", "a", time.Time{}, 0), now: t0, wantRefusal: "budget: 2 of 2"},
		{name: "entries stamped later by another replica count",
			entries: []budgetEntry{action("r0", "b", t0.Add(time.Second), 0), action("r9", "c", t0.Add(2*time.Second), 0)},
			entry:   action("r1", "a", time.Time{}, 0), now: t0, wantRefusal: "budget: 2 of 2"},
		{name: "entries out of the window do not count",
			entries: []budgetEntry{action("r0", "b", t0.Add(-2*time.Hour), 0), action("r9", "c", t0.Add(-61*time.Minute), 0)},
			entry:   action("r1", "a", time.Time{}, 0), now: t0, wantAdded: true, wantLeft: 1},
		{name: "a redelivered request is admitted again without a charge",
			entries: []budgetEntry{action("r0", "b", t0.Add(-time.Minute), 0), action("r1", "a", t0.Add(-time.Second), 0)},
			entry:   action("r1", "a", time.Time{}, 0), now: t0, wantLeft: 0},
		{name: "cooldown on the same target refuses",
			entries: []budgetEntry{action("r0", "a", t0.Add(-time.Minute), 5*time.Minute)},
			entry:   action("r1", "a", time.Time{}, 0), now: t0,
			wantRefusal: "cooldown: poke on i1 target a ran at 2026-03-01T11:59:00Z (request r0); next allowed after 2026-03-01T12:04:00Z"},
		{name: "cooldown ends", entries: []budgetEntry{action("r0", "a", t0.Add(-10*time.Minute), 5*time.Minute)},
			entry: action("r1", "a", time.Time{}, 0), now: t0, wantAdded: true, wantLeft: 0},
		{name: "cooldown outlives the budget window",
			entries: []budgetEntry{action("r0", "a", t0.Add(-2*time.Hour), 3*time.Hour)},
			entry:   action("r1", "a", time.Time{}, 0), now: t0, wantRefusal: "cooldown"},
		{name: "cooldown is per instance",
			entries: []budgetEntry{{RequestID: "r0", Kind: chargeAction, Instance: "i2", Action: "poke", Target: "a",
				At: t0.Add(-time.Minute), CooldownUntil: t0.Add(time.Hour)}},
			entry: action("r1", "a", time.Time{}, 0), now: t0, wantAdded: true, wantLeft: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := budgetRecord{Entries: append([]budgetEntry(nil), tt.entries...)}
			refusal, added := r.admit(tt.entry, tt.cooldown, l, tt.now)
			if added != tt.wantAdded || (tt.wantRefusal == "") != (refusal == "") || !strings.HasPrefix(refusal, tt.wantRefusal) {
				t.Fatalf("admit = %q, %v; want %q, %v", refusal, added, tt.wantRefusal, tt.wantAdded)
			}
			if refusal == "" {
				if left := r.remaining(tt.now, l); left != tt.wantLeft {
					t.Fatalf("remaining %d, want %d", left, tt.wantLeft)
				}
			}
		})
	}
}

func TestBudgetPrune(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r := budgetRecord{Entries: []budgetEntry{
		{RequestID: "gone", At: t0.Add(-2 * time.Hour)},
		{RequestID: "cooling", At: t0.Add(-2 * time.Hour), CooldownUntil: t0.Add(time.Minute)},
		{RequestID: "recent", At: t0.Add(-time.Minute)},
	}}
	r.prune(t0, time.Hour)
	var ids []string
	for _, e := range r.Entries {
		ids = append(ids, e.RequestID)
	}
	if strings.Join(ids, ",") != "cooling,recent" {
		t.Fatalf("kept %v", ids)
	}
}
