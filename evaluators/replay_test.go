package evaluators

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// replayInput is a recording-like sequence: a node goes down and back up,
// Redis drops out of the observation for a while (rule_error), the observer
// stops for a gap (observer_stale, on_missing), one observation arrives
// late and one twice, and a violation from another stream is mixed in.
func replayInput(t testing.TB) []event.Event {
	var evs []event.Event
	add := func(sec int, id string, s map[string]any) {
		evs = append(evs, observationEvent(t, "demo", "i1", id, at(time.Duration(sec)*time.Second), s))
	}
	for i := range 4 {
		add(i, fmt.Sprint("o", i), demoState(true, "n1=up", "n2=down"))
	}
	add(4, "o4", map[string]any{"nodes": []any{}})
	add(5, "o5", demoState(false, "n1=up"))
	add(2, "late", demoState(false, "n1=down")) // out of order: ignored
	add(5, "o5", demoState(false, "n1=up"))     // redelivered
	add(20, "o20", demoState(true, "n1=up"))
	other := observationEvent(t, "other", "x", "foreign", at(21*time.Second), map[string]any{})
	evs = append(evs, other)
	add(22, "o22", demoState(true, "n1=up"))
	return evs
}

func runReplay(t *testing.T, evs []event.Event, asJSON bool) []byte {
	t.Helper()
	i := 0
	next := func() (event.Event, error) {
		if i == len(evs) {
			return event.Event{}, io.EOF
		}
		i++
		return evs[i-1], nil
	}
	var out bytes.Buffer
	_, err := Replay(context.Background(), Config{WorkerID: "replay"}, parseRules(t, demoRules), next, func(_ string, e event.Event) error {
		if asJSON {
			b, err := json.Marshal(e)
			if err != nil {
				return err
			}
			out.Write(b)
			out.WriteByte('\n')
			return nil
		}
		out.WriteString(FormatEvent(e) + "\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestReplayIsDeterministic(t *testing.T) {
	evs := replayInput(t)
	first := runReplay(t, evs, true)
	second := runReplay(t, evs, true)
	if !bytes.Equal(first, second) {
		t.Fatalf("two replays of the same input differ:\n%s\n---\n%s", first, second)
	}
	golden(t, "replay.golden", runReplay(t, evs, false))
}

func TestReplayStats(t *testing.T) {
	evs := replayInput(t)
	i := 0
	st, err := Replay(context.Background(), Config{}, parseRules(t, demoRules), func() (event.Event, error) {
		if i == len(evs) {
			return event.Event{}, io.EOF
		}
		i++
		return evs[i-1], nil
	}, func(string, event.Event) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if st.Observations != 10 || st.Skipped != 1 || st.Emitted == 0 {
		t.Fatalf("stats %+v", st)
	}
}
