package evaluators

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// step is one evaluation in a state machine scenario.
type step struct {
	at   time.Duration
	res  Result
	want State
	emit Emit
}

func TestStep(t *testing.T) {
	T, F, M, E := ResultTrue, ResultFalse, ResultMissing, ResultError
	tests := []struct {
		name   string
		timing Timing
		steps  []step
	}{
		{"for 0 fires on the first true", Timing{}, []step{
			{0, F, Inactive, EmitNone},
			{1, T, Firing, EmitFiring},
			{2, T, Firing, EmitNone},
			{3, F, Resolved, EmitResolved},
			{4, F, Resolved, EmitNone},
		}},
		{"for holds pending until it has passed", Timing{For: 3 * time.Second}, []step{
			{0, T, Pending, EmitNone},
			{1, T, Pending, EmitNone},
			{2, T, Pending, EmitNone},
			{3, T, Firing, EmitFiring},
			{4, T, Firing, EmitNone},
		}},
		{"for interrupted: back to inactive, no event", Timing{For: 3 * time.Second}, []step{
			{0, T, Pending, EmitNone},
			{2, F, Inactive, EmitNone},
			{3, T, Pending, EmitNone},
			{5, T, Pending, EmitNone}, // the new grace period counts from 3s
			{6, T, Firing, EmitFiring},
		}},
		{"keep_firing_for holds a firing alert, then resolves", Timing{KeepFiringFor: 2 * time.Second}, []step{
			{0, T, Firing, EmitFiring},
			{1, F, Firing, EmitNone},
			{2, F, Firing, EmitNone},
			{3, F, Resolved, EmitResolved},
		}},
		{"true again during keep_firing_for keeps the episode and restarts the hold", Timing{KeepFiringFor: 2 * time.Second}, []step{
			{0, T, Firing, EmitFiring},
			{1, F, Firing, EmitNone},
			{2, T, Firing, EmitNone},
			{3, F, Firing, EmitNone},
			{4, F, Firing, EmitNone},
			{5, F, Resolved, EmitResolved},
		}},
		{"flapping without hysteresis: an episode per flap", Timing{}, []step{
			{0, T, Firing, EmitFiring},
			{1, F, Resolved, EmitResolved},
			{2, T, Firing, EmitFiring},
			{3, F, Resolved, EmitResolved},
		}},
		{"flapping with for: never fires", Timing{For: 2 * time.Second}, []step{
			{0, T, Pending, EmitNone},
			{1, F, Inactive, EmitNone},
			{2, T, Pending, EmitNone},
			{3, F, Inactive, EmitNone},
		}},
		{"on_missing resolve closes a firing alert at once", Timing{KeepFiringFor: time.Hour}, []step{
			{0, T, Firing, EmitFiring},
			{5, M, Resolved, EmitResolved},
		}},
		{"missing data abandons a pending alert", Timing{For: time.Minute}, []step{
			{0, T, Pending, EmitNone},
			{5, M, Inactive, EmitNone},
		}},
		{"an error keeps a firing alert firing", Timing{}, []step{
			{0, T, Firing, EmitFiring},
			{1, E, Firing, EmitNone},
			{2, E, Firing, EmitNone},
			{3, T, Firing, EmitNone},
		}},
		{"an error keeps a pending alert pending and its timer running", Timing{For: 2 * time.Second}, []step{
			{0, T, Pending, EmitNone},
			{1, E, Pending, EmitNone},
			{2, T, Firing, EmitFiring},
		}},
		{"out of order: an older observation changes nothing", Timing{}, []step{
			{5, T, Firing, EmitFiring},
			{3, F, Firing, EmitNone},
			{4, F, Firing, EmitNone},
			{6, F, Resolved, EmitResolved},
			{5, T, Resolved, EmitNone}, // never resurrects the resolved episode
		}},
		{"redelivery: the same observation twice changes nothing", Timing{}, []step{
			{1, T, Firing, EmitFiring},
			{1, T, Firing, EmitNone},
			{2, F, Resolved, EmitResolved},
			{2, F, Resolved, EmitNone},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a Alert
			for i, s := range tt.steps {
				now := at(s.at * time.Second)
				prev := a
				next, emit := Step(a, "fp", tt.timing, s.res, now, fmt.Sprint("obs-", i))
				if next.State != s.want || emit != s.emit {
					t.Fatalf("step %d (%s at %ds): state %s emit %s, want %s %s", i, resultName(s.res), s.at, next.State, emit, s.want, s.emit)
				}
				if emit == EmitNone && s.res == ResultError && next != prev {
					t.Fatalf("step %d: an error changed the alert: %+v → %+v", i, prev, next)
				}
				a = next
			}
		})
	}
}

func resultName(r Result) string {
	return [...]string{"false", "true", "missing", "error"}[r]
}

func TestStepEpisodes(t *testing.T) {
	a, _ := Step(Alert{}, "fp", Timing{}, ResultTrue, at(0), "o1")
	first := a.Episode
	if first == "" || first != EpisodeID("fp", at(0)) {
		t.Fatalf("episode %q, want EpisodeID(fp, 0s)", first)
	}
	if a.ActiveAt != at(0) || a.FiredAt != at(0) {
		t.Fatalf("times %+v", a)
	}
	a, _ = Step(a, "fp", Timing{}, ResultFalse, at(time.Second), "o2")
	if a.Episode != first || a.ResolvedAt != at(time.Second) {
		t.Fatalf("resolved alert lost its episode or time: %+v", a)
	}
	a, emit := Step(a, "fp", Timing{}, ResultTrue, at(2*time.Second), "o3")
	if emit != EmitFiring || a.Episode == first || a.Episode != EpisodeID("fp", at(2*time.Second)) {
		t.Fatalf("re-trigger after resolution: emit %s episode %q (first %q), want a new episode", emit, a.Episode, first)
	}
	if !a.ResolvedAt.IsZero() || a.LastEventID != "o3" {
		t.Fatalf("new episode carries old fields: %+v", a)
	}
	if EpisodeID("fp", at(0)) == EpisodeID("fp2", at(0)) {
		t.Fatal("episode ids of different fingerprints collide")
	}
}

func TestStateText(t *testing.T) {
	for _, s := range []State{Inactive, Pending, Firing, Resolved} {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var back State
		if err := json.Unmarshal(b, &back); err != nil || back != s {
			t.Fatalf("%s round trip: %s → %v, %v", s, b, back, err)
		}
		if strings.ToLower(s.String()) != s.String() {
			t.Fatalf("%q is not lowercase", s)
		}
	}
	if _, err := ParseState("bogus"); err == nil {
		t.Fatal("ParseState accepted bogus")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("String of an unknown state did not panic")
		}
	}()
	_ = State(42).String()
}
