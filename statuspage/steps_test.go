package statuspage

import (
	"strings"
	"testing"
)

func TestEpisodeOf(t *testing.T) {
	fs := episodeEvents(t, "ep1", "v is high")
	tests := []struct {
		name      string
		event     int
		wantKinds string
		// wantTitle is part of the last step's title.
		wantTitle string
		wantState string
	}{
		{"a firing violation is observed then fires", 0, "observed firing", "r[k] firing (critical): v is high", "firing"},
		{"an action request", 1, "requested", "poke{key=k} requested by /evaluators/e1/r", ""},
		{"a diagnosis", 2, "diagnosis", "diagnosed: load (likely)", ""},
		{"a result shows every gate, then the outcome", 3, "gate gate gate gate gate gate gate completed", "poke succeeded (execute mode, 1 attempt(s))", ""},
		{"a verification", 4, "verified", "poke verified (true)", ""},
		{"a resolution", 5, "resolved", "r[k] resolved", "resolved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := episodeOf('x', 7, fs[tt.event].e, false)
			if ep == nil {
				t.Fatal("no episode")
			}
			if ep.ID != "ep1" || ep.State != tt.wantState {
				t.Errorf("episode %q state %q, want ep1 %q", ep.ID, ep.State, tt.wantState)
			}
			var kinds []string
			for _, s := range ep.Steps {
				kinds = append(kinds, s.Kind)
				if s.Stream != "x" || s.Sequence != 7 || s.EventID != fs[tt.event].e.ID() || !strings.HasPrefix(s.ID, "x7.") {
					t.Errorf("step %+v does not say where it was read", s)
				}
			}
			if got := strings.Join(kinds, " "); got != tt.wantKinds {
				t.Errorf("kinds %q, want %q", got, tt.wantKinds)
			}
			if last := ep.Steps[len(ep.Steps)-1]; !strings.Contains(last.Title, tt.wantTitle) {
				t.Errorf("title %q, want it to contain %q", last.Title, tt.wantTitle)
			}
		})
	}

	t.Run("the events of an episode merge into one causal timeline, in any order", func(t *testing.T) {
		for _, order := range [][]int{{0, 1, 2, 3, 4, 5}, {5, 4, 3, 2, 1, 0}, {2, 0, 5, 3, 1, 4}} {
			ep := &Episode{ID: "ep1"}
			for _, i := range order {
				ep.merge(episodeOf(letters[i%3], uint64(i+1), fs[i].e, false))
				ep.merge(episodeOf(letters[i%3], uint64(i+1), fs[i].e, false)) // twice: added once
			}
			var kinds []string
			for _, s := range ep.Steps {
				if s.Kind != StepGate {
					kinds = append(kinds, s.Kind)
				}
			}
			want := "observed firing requested diagnosis completed verified resolved"
			if got := strings.Join(kinds, " "); got != want || len(ep.Steps) != 14 {
				t.Errorf("order %v: %d steps %q, want 14 with %q", order, len(ep.Steps), got, want)
			}
			if ep.State != "resolved" || ep.Rule != "r" || ep.Summary != "v is high" || ep.Diagnosis == nil || ep.ResolvedAt == nil {
				t.Errorf("order %v: header %+v", order, ep)
			}
			if !ep.LastAt.Equal(t0.Add(6e9)) {
				t.Errorf("last at %v", ep.LastAt)
			}
		}
	})

	t.Run("evidence data only when asked for", func(t *testing.T) {
		without := episodeOf('d', 1, fs[2].e, false).Diagnosis
		with := episodeOf('d', 1, fs[2].e, true).Diagnosis
		if without.Evidence[0].Data != nil || string(with.Evidence[0].Data) != `{"v":[1,2]}` {
			t.Errorf("data %s / %s", without.Evidence[0].Data, with.Evidence[0].Data)
		}
		if with.Evidence[1].Error != "connection refused" || with.Hypotheses[0].Supports[0] != "recent" {
			t.Errorf("diagnosis %+v", with)
		}
	})
}
