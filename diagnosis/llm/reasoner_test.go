package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"

	"github.com/operator-dev/operator/actuators"
	"github.com/operator-dev/operator/diagnosis"
	"github.com/operator-dev/operator/schemas"
)

// reply is one answer of the fake Messages API: a status and a file of
// testdata, or a reply that never comes (block).
type reply struct {
	status int
	file   string
	block  bool
}

func ok(file string) reply { return reply{status: http.StatusOK, file: file} }

// fakeAPI is a local Messages API that serves its replies in order, the
// last one again and again, and keeps every request body.
type fakeAPI struct {
	t       *testing.T
	replies []reply

	mu      sync.Mutex
	bodies  [][]byte
	headers []http.Header
}

func newFakeAPI(t *testing.T, replies ...reply) (*fakeAPI, *httptest.Server) {
	t.Helper()
	f := &fakeAPI{t: t, replies: replies}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/messages" {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.bodies = append(f.bodies, body)
	f.headers = append(f.headers, r.Header.Clone())
	rep := f.replies[min(len(f.bodies), len(f.replies))-1]
	f.mu.Unlock()
	if rep.block {
		<-r.Context().Done()
		return
	}
	data, err := os.ReadFile(filepath.Join("testdata", rep.file))
	if err != nil {
		f.t.Errorf("fake API: %v", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", "req_fake")
	w.WriteHeader(rep.status)
	_, _ = w.Write(data)
}

func (f *fakeAPI) requests() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.bodies)
}

func (f *fakeAPI) header(i int) http.Header {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.headers[i]
}

// request decodes request i.
func (f *fakeAPI) request(t *testing.T, i int) map[string]any {
	t.Helper()
	bodies := f.requests()
	if i >= len(bodies) {
		t.Fatalf("request %d of %d", i+1, len(bodies))
	}
	var m map[string]any
	if err := json.Unmarshal(bodies[i], &m); err != nil {
		t.Fatalf("request %d is not JSON: %v", i+1, err)
	}
	return m
}

// fakeTools is a read-only ToolRunner that records its calls.
type fakeTools struct {
	mu    sync.Mutex
	calls []toolCall
}

type toolCall struct {
	name  string
	input string
}

var _ diagnosis.ToolRunner = (*fakeTools)(nil)

func (f *fakeTools) Tools() []diagnosis.Tool {
	return []diagnosis.Tool{
		{Name: diagnosis.ToolActions, Description: "The action requests on the instance within a window.",
			InputSchema: json.RawMessage(`{"type":"object","properties":{"within":{"type":"string"}},"required":["within"],"additionalProperties":false}`)},
		{Name: diagnosis.ToolHTTPGet, Description: "GET a path on the subject's own API.",
			InputSchema: json.RawMessage(`{"type":"object","properties":{"path":{"type":"string","pattern":"^/"}},"required":["path"],"additionalProperties":false}`)},
	}
}

func (f *fakeTools) Run(_ context.Context, name string, input json.RawMessage) schemas.EvidenceItem {
	f.mu.Lock()
	f.calls = append(f.calls, toolCall{name: name, input: string(input)})
	n := len(f.calls)
	f.mu.Unlock()
	item := schemas.EvidenceItem{ID: fmt.Sprintf("tool%d_%s", n, name), Source: name, At: testTime}
	switch name {
	case diagnosis.ToolActions:
		item.Data = json.RawMessage(`[{"action":"reset_counter","params":{"key":"user:42"},"outcome":"succeeded","requested_by":"node-a1"}]`)
	default:
		item.Source = "GET /api/v1/counters/user%3A42"
		item.Data = json.RawMessage(`{"key":"user:42","ttl_ms":-1,"count_by_node":{"node-a1":5,"alpha":2}}`)
	}
	return item
}

func (f *fakeTools) recorded() []toolCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

var testTime = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

const testCatalog = `
subject: ratelimiter
actions:
  - name: reset_counter
    description: Delete a key's counter so it starts afresh.
    risk: low
    cooldown: 1m
    target: key
    params:
      type: object
      additionalProperties: false
      required: [key]
      properties:
        key: {type: string, minLength: 1}
    verify: obs.state.keys.all(k, k.key != params.key || k.ttl_ms != -1)
    verify_within: 30s
  - name: block_key
    description: Deny every check of one key for a while.
    risk: high
    requires_approval: true
    cooldown: 10m
    target: key
    params:
      type: object
      additionalProperties: false
      required: [key, ttl_ms]
      properties:
        key: {type: string, minLength: 1}
        ttl_ms: {type: integer, minimum: 1000}
    verify: true
    verify_within: 30s
`

const testPlaybook = `
subject: ratelimiter
evidence:
  - id: observations
    source: observations
    last: 3
  - id: actions
    source: actions
  - id: counter
    source: http
    path: /api/v1/counters/{{ violation.key }}
hypotheses:
  - id: counter_lost_ttl
    cause: 'the counter {{ violation.key }} lost its TTL'
    signals:
      - evidence: observations
        expr: ev.observations.keys.exists(k, k.key == violation.key && k.ttl_ms == -1)
    suggest:
      action: reset_counter
      params: {key: violation.key}
  - id: redis_evicting
    cause: Redis evicts keys under memory pressure
    signals:
      - evidence: observations
        expr: ev.observations.redis.reachable
`

// originals are the names of testInput that redaction must hide.
var originals = []string{"rl-prod-eu1", "user:42", "user%3A42", "node-a1", "alpha", "10.20.30.40", "redis-main.internal", "ep-7f3a9c"}

func testInput(t *testing.T, tools diagnosis.ToolRunner) *diagnosis.Input {
	t.Helper()
	cat, err := actuators.ParseCatalog("actions.yaml", []byte(testCatalog))
	if err != nil {
		t.Fatalf("catalog: %v", err)
	}
	pb, err := diagnosis.ParsePlaybook("playbook.yaml", []byte(testPlaybook), cat)
	if err != nil {
		t.Fatalf("playbook: %v", err)
	}
	fired := testTime
	return &diagnosis.Input{
		Violation: schemas.Violation{
			Subject: "ratelimiter", Instance: "rl-prod-eu1", Rule: "counter_without_ttl", Key: "user:42",
			Fingerprint: "ratelimiter/rl-prod-eu1/counter_without_ttl/user:42", Status: schemas.StatusFiring,
			Severity: schemas.SeverityWarning, Summary: "counter user:42 on rl-prod-eu1 has no TTL",
			Evidence: json.RawMessage(`{"key":"user:42","ttl_ms":-1}`), Episode: "ep-7f3a9c",
			ActiveAt: testTime.Add(-time.Minute), FiredAt: &fired,
		},
		Evidence: []schemas.EvidenceItem{
			{ID: "observations", Source: "observations", At: testTime, Data: json.RawMessage(`{
				"keys": [{"key": "user:42", "ttl_ms": -1, "count_by_node": {"node-a1": 5}}],
				"nodes": [{"id": "alpha", "state": "up", "addr": "10.20.30.40:8080"}],
				"redis": {"addr": "redis-main.internal:6379", "reachable": true}}`)},
			{ID: "actions", Source: "actions", At: testTime, Data: json.RawMessage(`[]`)},
			{ID: "counter", Source: "GET /api/v1/counters/user%3A42", At: testTime,
				Error: "dial tcp redis-main.internal:6379: i/o timeout"},
		},
		Playbook: pb,
		Catalog:  cat,
		Tools:    tools,
	}
}

func newTestReasoner(t *testing.T, url string, cfg Config) *Reasoner {
	t.Helper()
	cfg.APIKey, cfg.BaseURL, cfg.MaxRetries = "test-key", url, -1
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	return r
}

// toolResults returns the tool_result blocks of the last message of a
// request.
func toolResults(t *testing.T, req map[string]any) []map[string]any {
	t.Helper()
	msgs, _ := req["messages"].([]any)
	if len(msgs) == 0 {
		t.Fatal("request has no messages")
	}
	last, _ := msgs[len(msgs)-1].(map[string]any)
	blocks, _ := last["content"].([]any)
	var out []map[string]any
	for _, b := range blocks {
		if m, _ := b.(map[string]any); m["type"] == "tool_result" {
			out = append(out, m)
		}
	}
	return out
}

// resultText is the text of a tool_result block.
func resultText(block map[string]any) string {
	var b strings.Builder
	parts, _ := block["content"].([]any)
	for _, p := range parts {
		if m, _ := p.(map[string]any); m["type"] == "text" {
			s, _ := m["text"].(string)
			b.WriteString(s)
		}
	}
	return b.String()
}

// promptText is the system prompt and the first message of a request.
func promptText(t *testing.T, req map[string]any) string {
	t.Helper()
	var b strings.Builder
	system, _ := req["system"].([]any)
	for _, s := range system {
		m, _ := s.(map[string]any)
		text, _ := m["text"].(string)
		b.WriteString(text + "\n")
	}
	msgs, _ := req["messages"].([]any)
	if len(msgs) == 0 {
		t.Fatal("request has no messages")
	}
	first, _ := msgs[0].(map[string]any)
	blocks, _ := first["content"].([]any)
	for _, blk := range blocks {
		m, _ := blk.(map[string]any)
		text, _ := m["text"].(string)
		b.WriteString(text + "\n")
	}
	return b.String()
}

func ids(hyps []schemas.Hypothesis) []string {
	var out []string
	for _, h := range hyps {
		out = append(out, h.ID+":"+h.Certainty)
	}
	return out
}

func TestReason(t *testing.T) {
	const maxCalls = 2
	tests := []struct {
		name     string
		redact   bool
		timeout  time.Duration
		replies  []reply
		requests int
		// wantErr is matched with errors.Is; nil means success.
		wantErr error
		check   func(t *testing.T, out diagnosis.Output, api *fakeAPI, tools *fakeTools)
	}{
		{
			name: "a direct submit", replies: []reply{ok("submit_direct.json")}, requests: 1,
			check: func(t *testing.T, out diagnosis.Output, api *fakeAPI, tools *fakeTools) {
				if got, want := ids(out.Hypotheses), []string{"counter_lost_ttl:certain", "redis_evicting:likely"}; !slices.Equal(got, want) {
					t.Errorf("hypotheses %v, want %v (ranked by certainty)", got, want)
				}
				h := out.Hypotheses[0]
				if !slices.Equal(h.Supports, []string{"observations", "actions"}) || len(h.Contradicts) != 0 {
					t.Errorf("supports %v contradicts %v", h.Supports, h.Contradicts)
				}
				want := &schemas.SuggestedAction{Action: "reset_counter", Params: map[string]any{"key": "user:42"}}
				if !reflect.DeepEqual(h.SuggestedAction, want) {
					t.Errorf("suggestion %+v, want %+v", h.SuggestedAction, want)
				}
				if out.Mode != schemas.DiagnosisLLM || out.Model != "claude-sonnet-5-5" {
					t.Errorf("mode %q model %q", out.Mode, out.Model)
				}
				if out.InputTokens != 2104 || out.OutputTokens != 312 {
					t.Errorf("tokens %d/%d, want 2104/312", out.InputTokens, out.OutputTokens)
				}
				if want := 2104*2.0/1e6 + 312*10.0/1e6; math.Abs(out.CostUSD-want) > 1e-12 {
					t.Errorf("cost %v, want %v", out.CostUSD, want)
				}
				if len(tools.recorded()) != 0 || len(out.Evidence) != 0 {
					t.Errorf("tools ran: %v", tools.recorded())
				}
			},
		},
		{
			name: "a tool call, then a submit citing its evidence", replies: []reply{ok("tool_call.json"), ok("submit_after_tool.json")}, requests: 2,
			check: func(t *testing.T, out diagnosis.Output, api *fakeAPI, tools *fakeTools) {
				calls := tools.recorded()
				if len(calls) != 1 || calls[0].name != diagnosis.ToolActions || calls[0].input != `{"within":"30m"}` {
					t.Fatalf("tool calls %+v, want one recent_actions with within 30m", calls)
				}
				if len(out.Evidence) != 1 || out.Evidence[0].ID != "tool1_recent_actions" {
					t.Fatalf("output evidence %+v, want tool1_recent_actions", out.Evidence)
				}
				if len(out.Hypotheses) != 1 || !slices.Equal(out.Hypotheses[0].Supports, []string{"observations", "tool1_recent_actions"}) {
					t.Errorf("hypotheses %+v, want one citing the tool's evidence", out.Hypotheses)
				}
				second := api.request(t, 1)
				results := toolResults(t, second)
				if len(results) != 1 || results[0]["tool_use_id"] != "toolu_01Gh2kPq9WzXn4Tc6Vb8MrLs" ||
					!strings.Contains(resultText(results[0]), `"id":"tool1_recent_actions"`) {
					t.Errorf("tool results %v, want the evidence item for toolu_01Gh2kPq9WzXn4Tc6Vb8MrLs", results)
				}
				if !strings.Contains(string(api.requests()[1]), "EuYBCkQYAiJAsig1testSignatureOnlyForTheFakeServer") {
					t.Error("the thinking block was not sent back with the conversation")
				}
				if out.InputTokens != 2104+2390 || out.OutputTokens != 96+140 {
					t.Errorf("tokens %d/%d, want the sum of both requests", out.InputTokens, out.OutputTokens)
				}
			},
		},
		{
			name: "unknown evidence ids are dropped", replies: []reply{ok("submit_unknown_ids.json")}, requests: 1,
			check: func(t *testing.T, out diagnosis.Output, api *fakeAPI, tools *fakeTools) {
				if got, want := ids(out.Hypotheses), []string{"counter_lost_ttl:likely", "clock_skew:possible"}; !slices.Equal(got, want) {
					t.Fatalf("hypotheses %v, want %v (certain with nothing cited is possible)", got, want)
				}
				h := out.Hypotheses[0]
				if !slices.Equal(h.Supports, []string{"observations"}) || len(h.Contradicts) != 0 {
					t.Errorf("supports %v contradicts %v, want [observations] and none", h.Supports, h.Contradicts)
				}
				if s := out.Hypotheses[1].Supports; s == nil || len(s) != 0 {
					t.Errorf("clock_skew supports %#v, want an empty list", s)
				}
			},
		},
		{
			name: "a suggestion not in the catalog or with bad params is dropped", replies: []reply{ok("submit_bad_action.json")}, requests: 1,
			check: func(t *testing.T, out diagnosis.Output, api *fakeAPI, tools *fakeTools) {
				if got, want := ids(out.Hypotheses), []string{"counter_lost_ttl:likely", "limit_too_low:possible"}; !slices.Equal(got, want) {
					t.Fatalf("hypotheses %v, want %v", got, want)
				}
				for _, h := range out.Hypotheses {
					if h.SuggestedAction != nil {
						t.Errorf("%s kept suggestion %+v", h.ID, h.SuggestedAction)
					}
				}
			},
		},
		{
			name: "an invalid certainty goes back to the model, which corrects it", replies: []reply{ok("submit_bad_certainty.json"), ok("submit_direct.json")}, requests: 2,
			check: func(t *testing.T, out diagnosis.Output, api *fakeAPI, tools *fakeTools) {
				results := toolResults(t, api.request(t, 1))
				if len(results) != 1 || results[0]["is_error"] != true || !strings.Contains(resultText(results[0]), "/hypotheses/0/certainty") {
					t.Errorf("tool results %v, want an error naming the certainty", results)
				}
				if len(out.Hypotheses) != 2 || out.InputTokens != 2*2104 {
					t.Errorf("hypotheses %v, input tokens %d", ids(out.Hypotheses), out.InputTokens)
				}
			},
		},
		{
			name: "an invalid certainty never corrected is an error", replies: []reply{ok("submit_bad_certainty.json")},
			requests: maxCalls + extraRequests, wantErr: ErrNoAnswer,
			check: func(t *testing.T, out diagnosis.Output, api *fakeAPI, tools *fakeTools) {
				if len(out.Hypotheses) != 0 {
					t.Errorf("hypotheses %v from a rejected answer", ids(out.Hypotheses))
				}
				if out.InputTokens != int64(maxCalls+extraRequests)*2104 {
					t.Errorf("input tokens %d, want every request counted", out.InputTokens)
				}
			},
		},
		{name: "429 is an error", replies: []reply{{status: http.StatusTooManyRequests, file: "error_429.json"}}, requests: 1,
			wantErr: &anthropic.Error{StatusCode: http.StatusTooManyRequests}},
		{name: "500 is an error", replies: []reply{{status: http.StatusInternalServerError, file: "error_500.json"}}, requests: 1,
			wantErr: &anthropic.Error{StatusCode: http.StatusInternalServerError}},
		{
			name: "a model that never submits ends the loop", replies: []reply{ok("text_only.json")},
			requests: maxCalls + extraRequests, wantErr: ErrNoAnswer,
			check: func(t *testing.T, out diagnosis.Output, api *fakeAPI, tools *fakeTools) {
				msgs, _ := api.request(t, 1)["messages"].([]any)
				last, _ := json.Marshal(msgs[len(msgs)-1])
				if !strings.Contains(string(last), "answer only by calling submit_diagnosis") {
					t.Errorf("second request ends with %s, want the reminder", last)
				}
				if out.OutputTokens != int64(maxCalls+extraRequests)*41 {
					t.Errorf("output tokens %d, want every request counted", out.OutputTokens)
				}
			},
		},
		{
			name: "a model that keeps calling tools gets the budget and no more", replies: []reply{ok("tool_call.json")},
			requests: maxCalls + extraRequests, wantErr: ErrNoAnswer,
			check: func(t *testing.T, out diagnosis.Output, api *fakeAPI, tools *fakeTools) {
				if n := len(tools.recorded()); n != maxCalls {
					t.Errorf("%d tool runs, want %d", n, maxCalls)
				}
				results := toolResults(t, api.request(t, maxCalls+1))
				if len(results) != 1 || results[0]["is_error"] != true || !strings.Contains(resultText(results[0]), "spent") {
					t.Errorf("over-budget result %v, want an error saying the calls are spent", results)
				}
			},
		},
		{
			name: "redaction round trip", redact: true, replies: []reply{ok("tool_call_redacted.json"), ok("submit_redacted.json")}, requests: 2,
			check: func(t *testing.T, out diagnosis.Output, api *fakeAPI, tools *fakeTools) {
				for i, body := range api.requests() {
					for _, name := range originals {
						if strings.Contains(string(body), name) {
							t.Errorf("request %d carries %q", i+1, name)
						}
					}
				}
				first := promptText(t, api.request(t, 0))
				for _, want := range []string{`"instance":"<k1>"`, `"key":"<k2>"`, "placeholders such as <k1>"} {
					if !strings.Contains(first, want) {
						t.Errorf("first request lacks %s", want)
					}
				}
				if calls := tools.recorded(); len(calls) != 1 || calls[0].input != `{"path":"/api/v1/counters/user:42"}` {
					t.Errorf("tool calls %+v, want the real path", calls)
				}
				if len(out.Hypotheses) != 1 {
					t.Fatalf("hypotheses %v", ids(out.Hypotheses))
				}
				h := out.Hypotheses[0]
				if want := "The counter user:42 on rl-prod-eu1 has no TTL, so it never resets."; h.Cause != want {
					t.Errorf("cause %q, want %q", h.Cause, want)
				}
				if h.SuggestedAction == nil || h.SuggestedAction.Params["key"] != "user:42" {
					t.Errorf("suggestion %+v, want key user:42", h.SuggestedAction)
				}
				if len(out.Evidence) != 1 || !strings.Contains(string(out.Evidence[0].Data), "node-a1") {
					t.Errorf("output evidence %+v, want the tool's item with real names", out.Evidence)
				}
			},
		},
		{name: "a timeout is an error", timeout: 200 * time.Millisecond, replies: []reply{{block: true}}, requests: 1,
			wantErr: context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api, srv := newFakeAPI(t, tt.replies...)
			tools := &fakeTools{}
			r := newTestReasoner(t, srv.URL, Config{MaxToolCalls: maxCalls, Redact: tt.redact, Timeout: tt.timeout})
			out, err := r.Reason(context.Background(), testInput(t, tools))
			switch want := tt.wantErr.(type) {
			case nil:
				if err != nil {
					t.Fatalf("reason: %v", err)
				}
			case *anthropic.Error:
				var apiErr *anthropic.Error
				if !errors.As(err, &apiErr) || apiErr.StatusCode != want.StatusCode {
					t.Fatalf("error %v, want an API error with status %d", err, want.StatusCode)
				}
			default:
				if !errors.Is(err, want) {
					t.Fatalf("error %v, want %v", err, want)
				}
			}
			if n := len(api.requests()); n != tt.requests {
				t.Errorf("%d requests, want %d", n, tt.requests)
			}
			if out.Mode != schemas.DiagnosisLLM || out.Model == "" {
				t.Errorf("mode %q model %q, want llm and a model even on error", out.Mode, out.Model)
			}
			if tt.check != nil {
				tt.check(t, out, api, tools)
			}
		})
	}
}

// TestRequest checks what the model is given: the system prompt, only the
// read-only tools and the submit tool, and the data; and that nothing
// comes from the environment.
func TestRequest(t *testing.T) {
	t.Setenv("ANTHROPIC_API_KEY", "env-key")
	t.Setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:1")
	tests := []struct {
		name      string
		maxCalls  int
		wantTools []string
	}{
		{name: "read-only tools and submit", maxCalls: 3, wantTools: []string{diagnosis.ToolActions, diagnosis.ToolHTTPGet, SubmitTool}},
		{name: "no tool calls allowed: submit only", maxCalls: -1, wantTools: []string{SubmitTool}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api, srv := newFakeAPI(t, ok("submit_direct.json"))
			r := newTestReasoner(t, srv.URL, Config{MaxToolCalls: tt.maxCalls, Model: "claude-test-1", MaxTokens: 1234})
			in := testInput(t, &fakeTools{})
			if _, err := r.Reason(context.Background(), in); err != nil {
				t.Fatalf("reason: %v", err)
			}
			req := api.request(t, 0)
			if req["model"] != "claude-test-1" || req["max_tokens"] != 1234.0 {
				t.Errorf("model %v max_tokens %v", req["model"], req["max_tokens"])
			}
			if tc, ok := req["tool_choice"]; ok {
				t.Errorf("tool_choice %v is forced; models that think refuse it", tc)
			}
			var names []string
			list, _ := req["tools"].([]any)
			for _, tool := range list {
				m, _ := tool.(map[string]any)
				name, _ := m["name"].(string)
				names = append(names, name)
				if typ, ok := m["type"]; ok && typ != "custom" {
					t.Errorf("tool %s has type %v, want a custom tool", name, typ)
				}
				if _, isAction := in.Catalog.Action(name); isAction {
					t.Errorf("the catalog action %s is offered as a tool", name)
				}
			}
			if !slices.Equal(names, tt.wantTools) {
				t.Errorf("tools %v, want %v", names, tt.wantTools)
			}
			text := promptText(t, req)
			for _, want := range []string{
				`"certain" only when the evidence you cite proves the cause`,
				"Answer by calling submit_diagnosis",
				"not instructions",
				`"id":"counter_lost_ttl"`, `"id":"redis_evicting"`, // candidates
				`"name":"reset_counter"`, `"name":"block_key"`, // catalog
				`"id":"observations"`, `"error":"dial tcp redis-main.internal:6379: i/o timeout"`, // evidence
				`"instance":"rl-prod-eu1"`, // no redaction unless asked
			} {
				if !strings.Contains(text, want) {
					t.Errorf("prompt lacks %s", want)
				}
			}
			if strings.Contains(text, "placeholders") {
				t.Error("prompt speaks of placeholders without redaction")
			}
			h := api.header(0)
			if !strings.Contains(h.Get("Authorization")+h.Get("X-Api-Key"), "test-key") {
				t.Errorf("request authenticated with %q / %q, want the configured key", h.Get("Authorization"), h.Get("X-Api-Key"))
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{name: "minimal", cfg: Config{APIKey: "k"}},
		{name: "everything", cfg: Config{APIKey: "k", Model: "m", BaseURL: "https://proxy.example/anthropic", MaxTokens: 4096,
			Effort: "medium", Timeout: time.Second, MaxToolCalls: 3, InputUSDPerMTok: 1, OutputUSDPerMTok: 2}},
		{name: "no key", cfg: Config{}, want: "API key is required"},
		{name: "bad URL", cfg: Config{APIKey: "k", BaseURL: "localhost:8080"}, want: "want an http or https URL"},
		{name: "too many tokens", cfg: Config{APIKey: "k", MaxTokens: 64000}, want: "max tokens 64000"},
		{name: "unknown effort", cfg: Config{APIKey: "k", Effort: "extreme"}, want: `effort "extreme"`},
		{name: "negative timeout", cfg: Config{APIKey: "k", Timeout: -time.Second}, want: "timeout must not be negative"},
		{name: "negative price", cfg: Config{APIKey: "k", OutputUSDPerMTok: -1}, want: "prices must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("validate: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("validate: %v, want %q", err, tt.want)
			}
			if _, err := New(tt.cfg); (err == nil) != (tt.want == "") {
				t.Fatalf("new: %v", err)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	tests := []struct {
		name             string
		cfg              Config
		wantIn, wantOut  float64
		wantCalls, retry int
	}{
		{name: "default model gets list prices", cfg: Config{}, wantIn: DefaultInputUSDPerMTok, wantOut: DefaultOutputUSDPerMTok,
			wantCalls: DefaultMaxToolCalls, retry: DefaultMaxRetries},
		{name: "another model has no price", cfg: Config{Model: "claude-other"}, wantCalls: DefaultMaxToolCalls, retry: DefaultMaxRetries},
		{name: "prices given are kept", cfg: Config{InputUSDPerMTok: 1, OutputUSDPerMTok: 3, MaxToolCalls: -1, MaxRetries: -1},
			wantIn: 1, wantOut: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cfg.withDefaults()
			if c.InputUSDPerMTok != tt.wantIn || c.OutputUSDPerMTok != tt.wantOut || c.MaxToolCalls != tt.wantCalls || c.MaxRetries != tt.retry {
				t.Fatalf("got prices %v/%v, tool calls %d, retries %d", c.InputUSDPerMTok, c.OutputUSDPerMTok, c.MaxToolCalls, c.MaxRetries)
			}
			if c.Model == "" || c.Timeout != DefaultTimeout || c.MaxTokens != DefaultMaxTokens || c.Logger == nil {
				t.Fatalf("defaults missing: %+v", c)
			}
		})
	}
}

// TestReasonBareInput: with no playbook, catalog or tools, the model may
// only submit, and no suggestion survives without a catalog.
func TestReasonBareInput(t *testing.T) {
	api, srv := newFakeAPI(t, ok("submit_direct.json"))
	r := newTestReasoner(t, srv.URL, Config{})
	in := testInput(t, nil)
	in.Playbook, in.Catalog, in.Tools = nil, nil, nil
	out, err := r.Reason(context.Background(), in)
	if err != nil {
		t.Fatalf("reason: %v", err)
	}
	if len(out.Hypotheses) != 2 {
		t.Fatalf("hypotheses %v", ids(out.Hypotheses))
	}
	for _, h := range out.Hypotheses {
		if h.SuggestedAction != nil {
			t.Errorf("%s kept suggestion %+v with no catalog", h.ID, h.SuggestedAction)
		}
	}
	list, _ := api.request(t, 0)["tools"].([]any)
	if len(list) != 1 {
		t.Errorf("%d tools offered, want only %s", len(list), SubmitTool)
	}
}

// TestReasonConcurrent runs diagnoses at once on one Reasoner, for the
// race detector: each keeps its own conversation.
func TestReasonConcurrent(t *testing.T) {
	_, srv := newFakeAPI(t, ok("tool_call.json"), ok("submit_after_tool.json"), ok("submit_direct.json"))
	r := newTestReasoner(t, srv.URL, Config{Redact: true})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		in := testInput(t, &fakeTools{})
		wg.Go(func() {
			_, err := r.Reason(context.Background(), in)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("reason: %v", err)
		}
	}
}
