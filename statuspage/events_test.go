package statuspage

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// An sseEvent is one server-sent event as a client parses it.
type sseEvent struct {
	id, event, data string
}

// openEvents connects to the event stream with the given query and
// Last-Event-ID (when not empty) and returns its events; stop closes the
// connection and waits for the reader.
func (tp *testPage) openEvents(t *testing.T, query, lastID string) (events <-chan sseEvent, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, tp.srv.URL+"/api/v1/events"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("event stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	ch := make(chan sseEvent, 256)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.event != "" {
					ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	return ch, func() { cancel(); <-done }
}

// collect reads episode updates from events until it has n of them, and
// returns them with the id of the last.
func collect(t *testing.T, events <-chan sseEvent, n int) (got []Update, lastID string) {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for len(got) < n {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("the stream ended after %d of %d updates", len(got), n)
			}
			if ev.event != "episode" {
				continue
			}
			var u Update
			if err := json.Unmarshal([]byte(ev.data), &u); err != nil {
				t.Fatal(err)
			}
			if u.ID != ev.id || u.Event != ev.event {
				t.Errorf("event id %q / update id %q, event %q / %q", ev.id, u.ID, ev.event, u.Event)
			}
			got = append(got, u)
			lastID = ev.id
		case <-timeout:
			t.Fatalf("got %d of %d updates", len(got), n)
		}
	}
	return got, lastID
}

func seqs(us []Update) []string {
	var out []string
	for _, u := range us {
		out = append(out, u.Stream+itoa(u.Sequence))
	}
	return out
}

// TestEventsResume proves the stream's promise: a client that reconnects
// with the id of the last event it got is sent every update it missed,
// once, and nothing it had.
func TestEventsResume(t *testing.T) {
	tp := newTestPage(t, Config{Heartbeat: 100 * time.Millisecond})
	evs := episodeEvents(t, "ep1", "s")
	var st Status
	tp.get(t, "/api/v1/status", &st)

	events, stop := tp.openEvents(t, "?cursor="+st.Cursor, "")
	publish(t, tp.b, evs[:3]...) // v1, a1, d1
	first, lastID := collect(t, events, 3)
	stop()
	publish(t, tp.b, evs[3:]...) // a2, a3, v2: while disconnected

	// The header wins over a stale ?cursor=, as a browser's reconnect
	// sends both.
	events, stop = tp.openEvents(t, "?cursor="+st.Cursor, lastID)
	second, _ := collect(t, events, 3)
	heartbeat := false
	for deadline := time.After(5 * time.Second); !heartbeat; {
		select {
		case ev := <-events:
			heartbeat = ev.event == "heartbeat"
		case <-deadline:
			t.Fatal("no heartbeat")
		}
	}
	stop()

	all := append(seqs(first), seqs(second)...)
	slices.Sort(all)
	if got := strings.Join(all, " "); got != "a1 a2 a3 d1 v1 v2" {
		t.Errorf("updates across the reconnect %q, want every message once: a1 a2 a3 d1 v1 v2", got)
	}
	// Within a stream, in order.
	if got := strings.Join(seqs(second), " "); !strings.Contains(got, "a2") || strings.Index(got, "a2") > strings.Index(got, "a3") {
		t.Errorf("after the reconnect %q: a2 must come before a3", got)
	}

	t.Run("without a cursor the stream starts from now", func(t *testing.T) {
		events, stop := tp.openEvents(t, "", "")
		defer stop()
		publish(t, tp.b, episodeEvents(t, "ep2", "s")[0])
		got, _ := collect(t, events, 1)
		if seqs(got)[0] != "v3" {
			t.Errorf("got %v, want only the new v3", seqs(got))
		}
	})
	t.Run("a cursor past the streams gets a reset", func(t *testing.T) {
		events, stop := tp.openEvents(t, "?cursor=v99.a0.d0.o0.s0.c0", "")
		defer stop()
		select {
		case ev := <-events:
			if ev.event != "reset" || !strings.Contains(ev.data, "cursor expired") {
				t.Errorf("got %+v, want a reset", ev)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no reset")
		}
		if _, open := <-events; open {
			t.Error("the stream stayed open after the reset")
		}
	})
	tests := []struct {
		name          string
		query, lastID string
	}{
		{"a bad cursor", "?cursor=nonsense", ""},
		{"a bad Last-Event-ID", "", "v1.a1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, tp.srv.URL+"/api/v1/events"+tt.query, nil)
			if tt.lastID != "" {
				req.Header.Set("Last-Event-ID", tt.lastID)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			wantProblem(t, resp, http.StatusBadRequest)
		})
	}
}

// TestEventsFollowEveryStream checks that the stream carries the alerts,
// the controls and the instances as they change, not only episodes.
func TestEventsFollowEveryStream(t *testing.T) {
	tp := newTestPage(t, Config{})
	events, stop := tp.openEvents(t, "", "")
	defer stop()
	now := time.Now()
	publish(t, tp.b, observation(t, now, `[{"name":"a","n":3}]`))
	putApproval(t, tp, "act-7", now)
	putJSON(t, tp.b, "operator_evaluator_state", "toy/i1/r/k", map[string]any{"fingerprint": "toy/i1/r/k", "subject": "toy",
		"instance": "i1", "rule": "r", "key": "k", "state": "pending", "active_at": now, "last_eval_at": now})
	want := map[string]bool{"instance": false, "control": false, "alert": false}
	timeout := time.After(15 * time.Second)
	for missing := 3; missing > 0; {
		select {
		case ev := <-events:
			if seen, ok := want[ev.event]; ok && !seen {
				want[ev.event] = true
				missing--
			}
		case <-timeout:
			t.Fatalf("events seen: %v", want)
		}
	}
}
