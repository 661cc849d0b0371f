package statuspage

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/operator-dev/operator/actuators"
	"github.com/operator-dev/operator/internal/bus/bustest"
	"github.com/operator-dev/operator/schemas"
)

// get GETs path and decodes the JSON answer into v (when not nil).
func (tp *testPage) get(t *testing.T, path string, v any) *http.Response {
	t.Helper()
	resp, err := http.Get(tp.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if v != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("%s: %v in %s", path, err, body)
		}
	}
	resp.Body = io.NopCloser(strings.NewReader(string(body)))
	return resp
}

// wantProblem checks that resp is a problem+json with status.
func wantProblem(t *testing.T, resp *http.Response, status int) problem {
	t.Helper()
	var p problem
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("status %d %s (%s), want %d application/problem+json", resp.StatusCode, resp.Header.Get("Content-Type"), body, status)
	}
	if err := json.Unmarshal(body, &p); err != nil || p.Status != status || p.Detail == "" || p.Title == "" {
		t.Fatalf("problem %s: %+v, %v", body, p, err)
	}
	return p
}

func TestStatus(t *testing.T) {
	tp := newTestPage(t, Config{})
	publish(t, tp.b, episodeEvents(t, "ep1", "v is high")...)
	now := time.Now().UTC()
	publish(t, tp.b, observation(t, now.Add(-10*time.Second), `[{"name":"a","n":1}]`), observation(t, now, `[{"name":"b","n":7}]`))
	active, fired, since := now.Add(-4*time.Second), now.Add(-time.Second), now.Add(-2*time.Second)
	putJSON(t, tp.b, schemas.BucketEvaluatorState, "toy/i1/r/p", schemas.AlertRecord{Fingerprint: "toy/i1/r/p", Subject: "toy",
		Instance: "i1", Rule: "r", Key: "p", State: schemas.AlertPending, Episode: "ep2", ActiveAt: &active, LastEvalAt: now,
		Extra: json.RawMessage(`{"summary":"an earlier episode's"}`)})
	putJSON(t, tp.b, schemas.BucketEvaluatorState, "toy/i1/r/f", schemas.AlertRecord{Fingerprint: "toy/i1/r/f", Subject: "toy",
		Instance: "i1", Rule: "r", Key: "f", State: schemas.AlertFiring, Episode: "ep3", ActiveAt: &active, FiredAt: &fired,
		KeepFiringSince: &since, LastEvalAt: now, Extra: json.RawMessage(`{"severity":"critical","summary":"<b>f</b> is high"}`)})
	putJSON(t, tp.b, schemas.BucketEvaluatorState, "toy/i1/r/old", schemas.AlertRecord{Fingerprint: "toy/i1/r/old", Subject: "toy",
		Instance: "i1", Rule: "r", Key: "old", State: schemas.AlertResolved, LastEvalAt: now})
	putJSON(t, tp.b, schemas.BucketEvaluatorState, ".instances/toy/i1", map[string]any{"subject": "toy", "instance": "i1"})
	putJSON(t, tp.b, schemas.BucketControl, actuators.KeyKillSwitch, actuators.KillSwitch{Engaged: true, By: "alice", Reason: "drill", At: now})
	putApproval(t, tp, "act-1", now)

	var st Status
	if resp := tp.get(t, "/api/v1/status", &st); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if _, err := ParseCursor(st.Cursor); err != nil || !strings.HasPrefix(st.Cursor, "v2.a3.d1.o2.") {
		t.Errorf("cursor %q, %v", st.Cursor, err)
	}

	t.Run("alerts: firing first, pending with the grace left, resolved left out", func(t *testing.T) {
		if len(st.Alerts) != 2 {
			t.Fatalf("alerts %+v", st.Alerts)
		}
		f, p := st.Alerts[0], st.Alerts[1]
		if f.Key != "f" || f.State != "firing" || f.Summary != "<b>f</b> is high" || f.Severity != "critical" ||
			f.ResolvesAt == nil || !f.ResolvesAt.Equal(since.Add(5*time.Second)) {
			t.Errorf("firing alert %+v", f)
		}
		if p.Key != "p" || p.State != "pending" || p.Summary != "" || p.Severity != "critical" || p.ForMS == nil || *p.ForMS != 10000 ||
			p.FiresAt == nil || !p.FiresAt.Equal(active.Add(10*time.Second)) {
			t.Errorf("pending alert %+v", p)
		}
	})
	t.Run("an instance: its latest observation's health and tables", func(t *testing.T) {
		if len(st.Instances) != 1 {
			t.Fatalf("instances %+v", st.Instances)
		}
		in := st.Instances[0]
		if !in.ObservedAt.Equal(now) || in.Stale || in.StaleAfterMS != 3000 || len(in.Tables) != 1 || in.Tables[0].Rows[0].Cells[0] != "b" {
			t.Errorf("instance %+v", in)
		}
	})
	t.Run("an episode with its whole chain", func(t *testing.T) {
		if len(st.Episodes) != 1 {
			t.Fatalf("episodes %+v", st.Episodes)
		}
		ep := st.Episodes[0]
		var kinds []string
		for _, s := range ep.Steps {
			kinds = append(kinds, s.Kind)
		}
		if ep.ID != "ep1" || ep.State != "resolved" || len(ep.Steps) != 14 || ep.Diagnosis == nil || ep.Diagnosis.Evidence[0].Data != nil {
			t.Errorf("episode %+v, steps %v", ep, kinds)
		}
	})
	t.Run("controls", func(t *testing.T) {
		c := st.Control
		if len(c.KillSwitches) != 1 || !c.KillSwitches[0].Engaged || len(c.Approvals) != 1 || c.Approvals[0].RequestID != "act-1" ||
			c.Approvals[0].Action != "poke" || c.Approvals[0].Risk != "high" {
			t.Errorf("control %+v", c)
		}
	})
	t.Run("the episode endpoint", func(t *testing.T) {
		var ep Episode
		if resp := tp.get(t, "/api/v1/episodes/ep1", &ep); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if len(ep.Steps) != 14 || string(ep.Diagnosis.Evidence[0].Data) != `{"v":[1,2]}` {
			t.Errorf("episode %+v", ep)
		}
		wantProblem(t, tp.get(t, "/api/v1/episodes/nope", nil), http.StatusNotFound)
		wantProblem(t, tp.get(t, "/api/v1/episodes/"+strings.Repeat("x", 300), nil), http.StatusBadRequest)
	})
	t.Run("a history window leaves older episodes out", func(t *testing.T) {
		short := &Page{cfg: tp.page.cfg, bus: tp.b, control: tp.page.control, rules: tp.page.rules, views: tp.page.views, log: tp.page.log}
		short.cfg.History = time.Nanosecond
		st, err := short.Status(bustest.Context(t, 10*time.Second), time.Now().Add(time.Hour))
		if err != nil || len(st.Episodes) != 0 || len(st.Alerts) != 2 {
			t.Errorf("%d episodes, %d alerts, %v", len(st.Episodes), len(st.Alerts), err)
		}
	})
}

// putApproval stores a pending approval of a high-risk poke on toy/i1, as
// the actuator's approval gate does.
func putApproval(t *testing.T, tp *testPage, id string, now time.Time) {
	t.Helper()
	req := schemas.ActionRequest{ID: id, Subject: "toy", Instance: "i1", Action: "poke", Params: map[string]any{"key": "k"},
		RequestedBy: "tests", RequestedAt: now}
	putJSON(t, tp.b, schemas.BucketControl, "approval/"+id, actuators.Approval{RequestID: id, State: actuators.ApprovalPending,
		Request: req, CorrelationID: "ep9", Risk: actuators.RiskHigh, RequestedAt: now, ExpiresAt: now.Add(time.Hour)})
}

func TestUpdates(t *testing.T) {
	tp := newTestPage(t, Config{PollLimit: 3})
	evs := episodeEvents(t, "ep1", "s")
	publish(t, tp.b, evs[:2]...) // violations 1, actions 1
	var st Status
	tp.get(t, "/api/v1/status", &st)
	publish(t, tp.b, evs[2:]...) // diagnoses 1, actions 2 3, violations 2

	var u Updates
	if resp := tp.get(t, "/api/v1/updates?cursor="+st.Cursor, &u); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var got []string
	for _, up := range u.Updates {
		got = append(got, up.Stream+itoa(up.Sequence))
		if c, err := ParseCursor(up.ID); err != nil || c[strings.IndexByte(letters, up.Stream[0])] != up.Sequence {
			t.Errorf("update id %q does not end at its own message %s%d", up.ID, up.Stream, up.Sequence)
		}
	}
	if strings.Join(got, " ") != "v2 a2 a3 d1" || u.More || !strings.HasPrefix(u.Cursor, "v2.a3.d1.") {
		t.Errorf("updates %v more %v cursor %s", got, u.More, u.Cursor)
	}
	var again Updates
	tp.get(t, "/api/v1/updates?cursor="+u.Cursor, &again)
	if len(again.Updates) != 0 || again.Cursor != u.Cursor {
		t.Errorf("a poll from the last cursor got %+v", again)
	}

	t.Run("a poll stops at its limit and goes on from there, without a gap or a repeat", func(t *testing.T) {
		for i := range 5 {
			publish(t, tp.b, episodeEvents(t, "more"+itoa(uint64(i)), "s")[0]) // violations 3..7
		}
		c, _ := ParseCursor(u.Cursor)
		c[posViolations] = 0
		cursor, polls := c.String(), 0
		var seqs []string
		for more := true; more; polls++ {
			var next Updates
			tp.get(t, "/api/v1/updates?cursor="+cursor, &next)
			for _, up := range next.Updates {
				seqs = append(seqs, up.Stream+itoa(up.Sequence))
			}
			cursor, more = next.Cursor, next.More
		}
		if got := strings.Join(seqs, " "); got != "v1 v2 v3 v4 v5 v6 v7" || polls != 3 {
			t.Errorf("%d polls got %q", polls, got)
		}
	})

	t.Run("observations: only each instance's latest", func(t *testing.T) {
		now := time.Now()
		for i := range 4 {
			publish(t, tp.b, observation(t, now.Add(time.Duration(i)*time.Millisecond), `[]`))
		}
		var next Updates
		tp.get(t, "/api/v1/updates?cursor="+u.Cursor, &next)
		var got []string
		for _, up := range next.Updates {
			if up.Stream == "o" {
				got = append(got, itoa(up.Sequence))
			}
		}
		if strings.Join(got, " ") != "4" {
			t.Errorf("observation updates %v, want the latest only (4)", got)
		}
	})

	tests := []struct {
		name   string
		query  string
		status int
	}{
		{"no cursor", "", http.StatusBadRequest},
		{"a bad cursor", "?cursor=v1", http.StatusBadRequest},
		{"a cursor past the streams (a new store)", "?cursor=v99.a0.d0.o0.s0.c0", http.StatusGone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantProblem(t, tp.get(t, "/api/v1/updates"+tt.query, nil), tt.status)
		})
	}
}

func itoa(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestRoutes(t *testing.T) {
	tp := newTestPage(t, Config{})
	tests := []struct {
		name, method, path string
		status             int
		ctype              string
	}{
		{"the page", "GET", "/", 200, "text/html; charset=utf-8"},
		{"its script", "GET", "/ui/app.js", 200, "text/javascript; charset=utf-8"},
		{"its style", "GET", "/ui/app.css", 200, "text/css; charset=utf-8"},
		{"a file it does not have", "GET", "/ui/secret.txt", 404, "application/problem+json"},
		{"a path it does not serve", "GET", "/nope", 404, "application/problem+json"},
		{"a POST to a read", "POST", "/api/v1/status", 405, "application/problem+json"},
		{"a GET of a control", "GET", "/api/v1/killswitch", 405, "application/problem+json"},
		{"a DELETE of an approval", "DELETE", "/api/v1/approvals/x/approve", 405, "application/problem+json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, tp.srv.URL+tt.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != tt.ctype {
				t.Errorf("%d %s, want %d %s", resp.StatusCode, resp.Header.Get("Content-Type"), tt.status, tt.ctype)
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") ||
				resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("security headers %v", resp.Header)
			}
		})
	}
}
