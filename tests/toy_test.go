package tests

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/spf13/pflag"

	"github.com/operator-dev/operator/actuators"
	"github.com/operator-dev/operator/diagnosis/llm"
	"github.com/operator-dev/operator/internal/bus/bustest"
	"github.com/operator-dev/operator/observers"
	"github.com/operator-dev/operator/pipeline"
	"github.com/operator-dev/operator/schemas"
	"github.com/operator-dev/operator/subjects"
)

// toyQueue is the system the toy subject watches: a queue whose depth
// grows until someone drains it.
type toyQueue struct {
	depth  atomic.Int64
	drains atomic.Int64
}

// toySubject is a subject that exists only in this test: an observer that
// reads the queue's depth, a rule set that fires when it is deep, and a
// catalog and executor that drain it. It is written the way a new subject
// is, against the subjects contract alone.
func toySubject(t *testing.T, q *toyQueue) subjects.Subject {
	t.Helper()
	files, err := subjects.ShippedFiles(os.DirFS("testdata/toy"), "testdata/toy")
	if err != nil {
		t.Fatal(err)
	}
	source := observers.SourceFunc(func(context.Context) (observers.State, error) {
		return observers.State{Value: map[string]any{"depth": q.depth.Load()}}, nil
	})
	executor := actuators.ExecutorFunc(func(_ context.Context, req schemas.ActionRequest) (schemas.ActionResult, error) {
		q.depth.Store(0)
		q.drains.Add(1)
		return schemas.ActionResult{Reason: "drained"}, nil
	})
	return subjects.Subject{
		Name:  "toy",
		Title: "toy queue",
		Files: files,
		Observer: subjects.Observer{
			Short:           "Observe a toy queue",
			DefaultInstance: "q1",
			DefaultInterval: 100 * time.Millisecond,
			Flags: func(*pflag.FlagSet) subjects.NewSource {
				return func(context.Context, *slog.Logger) (observers.Source, func() error, error) { return source, nil, nil }
			},
		},
		Executor: subjects.Executor{Flags: func(*pflag.FlagSet) subjects.NewExecutor {
			return func() (actuators.Executor, error) { return executor, nil }
		}},
		Local: subjects.Local{Flags: func(*pflag.FlagSet) subjects.StartLocal {
			return func(context.Context, subjects.Env) (*subjects.Deployment, error) {
				return &subjects.Deployment{Instance: "q1", Interval: 100 * time.Millisecond, Source: source, Executor: executor}, nil
			}
		}},
	}
}

// TestToySubjectThroughThePipeline plugs a subject the core has never heard
// of into the one-process pipeline and follows one episode to its end: the
// queue grows, queue_deep fires, drain is requested, executed and verified,
// and the violation resolves. Nothing outside this file knows the subject.
func TestToySubjectThroughThePipeline(t *testing.T) {
	q := &toyQueue{}
	s := toySubject(t, q)
	if _, err := subjects.NewRegistry(s); err != nil {
		t.Fatal(err)
	}
	start := s.Local.Flags(pflag.NewFlagSet("up", pflag.ContinueOnError))
	ctx := bustest.Context(t, time.Minute)
	d, err := start(ctx, subjects.Env{})
	if err != nil {
		t.Fatal(err)
	}
	d.Subject = s
	p, err := pipeline.Start(ctx, pipeline.Config{Store: t.TempDir(), Deployments: []*subjects.Deployment{d}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})

	var (
		mu   sync.Mutex
		seen []string // "type status/outcome", in order
	)
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	t.Cleanup(func() { stop(); wg.Wait() })
	wg.Go(func() {
		_ = p.Bus.Tail(runCtx, "", time.Time{}, func(_ string, e event.Event, err error) {
			if err != nil || e.Type() == schemas.TypeObservation {
				return
			}
			var d struct {
				Status   string `json:"status"`
				Outcome  string `json:"outcome"`
				Verified *bool  `json:"verified"`
				Action   string `json:"action"`
			}
			_ = json.Unmarshal(e.Data(), &d)
			line := e.Type() + " "
			switch e.Type() {
			case schemas.TypeViolation:
				line += d.Status
			case schemas.TypeActionRequested:
				line += d.Action
			case schemas.TypeActionCompleted:
				line += d.Outcome
			case schemas.TypeActionVerified:
				if d.Verified != nil && *d.Verified {
					line += "verified"
				}
			}
			mu.Lock()
			seen = append(seen, line)
			mu.Unlock()
		})
	})
	wg.Go(func() {
		if err := p.Run(runCtx); err != nil && runCtx.Err() == nil {
			t.Errorf("run: %v", err)
		}
	})

	has := func(want string) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, l := range seen {
			if l == want {
				return true
			}
		}
		return false
	}
	// Healthy first: nothing fires while the queue is shallow.
	q.depth.Store(3)
	time.Sleep(500 * time.Millisecond)
	if has(schemas.TypeViolation + " firing") {
		t.Fatal("queue_deep fired on a shallow queue")
	}
	q.depth.Store(25)
	for _, want := range []string{
		schemas.TypeViolation + " firing",
		schemas.TypeActionRequested + " drain",
		schemas.TypeActionCompleted + " succeeded",
		schemas.TypeActionVerified + " verified",
		schemas.TypeViolation + " resolved",
	} {
		bustest.Eventually(t, 30*time.Second, func() bool { return has(want) }, want)
	}
	if n := q.drains.Load(); n != 1 {
		t.Errorf("the queue was drained %d times, want once", n)
	}
}

// TestToySubjectDiagnosedByAnLLM runs the pipeline with an LLM reasoner
// against a local stand-in of the Messages API: the episode's diagnosis is
// the model's answer, in the diagnosis schema, with its tokens, and the
// request carried the evidence and no tool that acts.
func TestToySubjectDiagnosedByAnLLM(t *testing.T) {
	var (
		mu   sync.Mutex
		sent []string
	)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		sent = append(sent, string(body))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"msg_1","type":"message","role":"assistant","model":"claude-test","stop_reason":"tool_use",
			"usage":{"input_tokens":900,"output_tokens":80},
			"content":[{"type":"tool_use","id":"tu_1","name":"submit_diagnosis","input":{"hypotheses":[
			  {"id":"consumers_gone","cause":"the queue has no consumer","certainty":"likely","supports":["observations"],"contradicts":[],
			   "suggested_action":{"action":"drain","params":{}}}]}}]}`))
	}))
	t.Cleanup(api.Close)
	reasoner, err := llm.New(llm.Config{APIKey: "test-key", Model: "claude-test", BaseURL: api.URL, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	q := &toyQueue{}
	q.depth.Store(50)
	s := toySubject(t, q)
	d, err := s.Local.Flags(pflag.NewFlagSet("up", pflag.ContinueOnError))(context.Background(), subjects.Env{})
	if err != nil {
		t.Fatal(err)
	}
	d.Subject = s
	ctx := bustest.Context(t, time.Minute)
	p, err := pipeline.Start(ctx, pipeline.Config{Store: t.TempDir(), Deployments: []*subjects.Deployment{d}, Reasoner: reasoner,
		Actuator: actuators.Config{Mode: schemas.ModeObserve}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	t.Cleanup(func() { stop(); wg.Wait() })
	found := make(chan schemas.Diagnosis, 1)
	wg.Go(func() {
		_ = p.Bus.Tail(runCtx, "operator.diagnosis.>", time.Time{}, func(_ string, e event.Event, err error) {
			var diag schemas.Diagnosis
			if err == nil && json.Unmarshal(e.Data(), &diag) == nil {
				select {
				case found <- diag:
				default:
				}
			}
		})
	})
	wg.Go(func() { _ = p.Run(runCtx) })
	var diag schemas.Diagnosis
	select {
	case diag = <-found:
	case <-ctx.Done():
		t.Fatal("no diagnosis")
	}
	top := diag.Top()
	if diag.Mode != schemas.DiagnosisLLM || diag.Model != "claude-test" || diag.InputTokens != 900 || diag.OutputTokens != 80 ||
		top.ID != "consumers_gone" || top.SuggestedAction == nil || diag.Error != "no playbook for toy" {
		t.Fatalf("diagnosis %+v", diag)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sent) != 1 || !strings.Contains(sent[0], "queue_deep") || !strings.Contains(sent[0], `\"depth\":50`) && !strings.Contains(sent[0], `"depth":50`) {
		t.Fatalf("requests %d; the first lacks the violation or the evidence: %.500s", len(sent), strings.Join(sent, "\n"))
	}
	if strings.Contains(sent[0], `"name":"drain"`) {
		t.Error("the model was offered the catalog's action as a tool")
	}
}
