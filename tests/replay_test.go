package tests

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/operator-dev/operator/evaluators"
	"github.com/operator-dev/operator/internal/bus"
	"github.com/operator-dev/operator/pipeline/scenario"
	srl "github.com/operator-dev/operator/subjects/ratelimiter"
)

var update = flag.Bool("update", false, "rewrite the golden replay outputs in testdata/recordings")

// replay feeds a recording through the shipped rule set and returns the
// events it emits, one formatted line each, as `operator replay` prints them.
func replay(t *testing.T, file string) string {
	t.Helper()
	rs, err := srl.Subject().RuleSet(evaluators.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rr := bus.NewRecordReader(f)
	next := func() (event.Event, error) {
		r, err := rr.Next()
		if err != nil {
			return event.Event{}, err
		}
		return r.Event()
	}
	var out bytes.Buffer
	emit := func(_ string, e event.Event) error {
		_, err := fmt.Fprintln(&out, evaluators.FormatEvent(e))
		return err
	}
	cfg := evaluators.Config{WorkerID: "replay"}
	if _, err := evaluators.Replay(context.Background(), cfg, []*evaluators.RuleSet{rs}, next, emit); err != nil {
		t.Fatalf("replay %s: %v", file, err)
	}
	return out.String()
}

// TestReplayRecordings replays the observations recorded from each
// scenario's real run (operator demo all --record tests/testdata/recordings)
// and compares the violations and action requests with the golden output
// beside the recording. A replay is deterministic, so any difference is a
// change in the rules or the engine.
func TestReplayRecordings(t *testing.T) {
	for _, sc := range scenario.All() {
		t.Run(sc.Name, func(t *testing.T) {
			rec := filepath.Join("testdata", "recordings", "ratelimiter-"+sc.Name+".jsonl")
			if _, err := os.Stat(rec); err != nil {
				t.Fatalf("no recording of %s: %v (record one with: operator demo %s --record tests/testdata/recordings)", sc.Name, err, sc.Name)
			}
			got := replay(t, rec)
			if again := replay(t, rec); again != got {
				t.Fatal("two replays of the same recording differ")
			}
			golden := strings.TrimSuffix(rec, ".jsonl") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./tests -run TestReplayRecordings -update)", err)
			}
			if got != string(want) {
				t.Errorf("replay of %s differs from %s:\n--- got\n%s--- want\n%s", rec, golden, got, want)
			}
			// The recording must show the scenario's fault: its rule fires.
			if !strings.Contains(got, " violation firing ratelimiter/demo/"+sc.Rule+"/") {
				t.Errorf("replay of %s never fires %s", rec, sc.Rule)
			}
		})
	}
}
