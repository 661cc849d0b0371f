package diagnosis_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/operator-dev/operator/actuators"
	"github.com/operator-dev/operator/diagnosis"
	"github.com/operator-dev/operator/internal/bus"
	"github.com/operator-dev/operator/internal/bus/bustest"
	"github.com/operator-dev/operator/schemas"
)

// world is one embedded bus with what a diagnosis reads: observations of
// toy/i1, the alert state, an action, and the queue's API and Prometheus.
type world struct {
	t        *testing.T
	b        *bus.Bus
	alerts   *bus.KV
	api      *httptest.Server
	apiCalls atomic.Int64
	prom     *httptest.Server
	pb       *diagnosis.Playbook
	cat      *actuators.Catalog
	at       time.Time
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, b: bustest.New(t), at: time.Now().UTC().Truncate(time.Millisecond)}
	ctx := bustest.Context(t, 20*time.Second)
	var err error
	if w.alerts, err = w.b.KV(ctx, schemas.BucketEvaluatorState); err != nil {
		t.Fatal(err)
	}
	w.api = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.apiCalls.Add(1)
		if r.Method != http.MethodGet {
			t.Errorf("diagnosis sent %s %s: evidence is read-only", r.Method, r.URL.Path)
		}
		if r.URL.Path == "/queues/orders" {
			_, _ = rw.Write([]byte(`{"consumers": 0, "depth": 40}`))
			return
		}
		http.NotFound(rw, r)
	}))
	t.Cleanup(w.api.Close)
	w.prom = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" || !strings.Contains(r.URL.Query().Get("query"), `queue="orders"`) {
			http.Error(rw, `{"status":"error","error":"bad query"}`, http.StatusBadRequest)
			return
		}
		_, _ = rw.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"0"]}]}}`))
	}))
	t.Cleanup(w.prom.Close)

	cat, err := actuators.ParseCatalog("testdata/catalog.yaml", mustRead(t, "testdata/catalog.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	w.cat = cat
	if w.pb, err = diagnosis.ParsePlaybook("testdata/playbook.yaml", mustRead(t, "testdata/playbook.yaml"), cat); err != nil {
		t.Fatal(err)
	}

	// Three observations, the queue growing.
	for i, depth := range []int{5, 20, 40} {
		obsAt := w.at.Add(time.Duration(i-3) * time.Second)
		w.publish(ctx, "operator.obs.toy.i1", schemas.EventSpec{Type: schemas.TypeObservation, Source: "/observers/toy/i1",
			Subject: "toy/i1", ID: "obs" + string(rune('0'+i)), Time: obsAt},
			schemas.Observation{Subject: "toy", Instance: "i1", ObservedAt: obsAt, State: json.RawMessage(`{"depth":` + itoa(depth) + `}`)})
	}
	// Another instance's observation, never part of i1's evidence.
	w.publish(ctx, "operator.obs.toy.i2", schemas.EventSpec{Type: schemas.TypeObservation, Source: "/observers/toy/i2",
		Subject: "toy/i2", ID: "other", Time: w.at}, schemas.Observation{Subject: "toy", Instance: "i2", ObservedAt: w.at, State: json.RawMessage(`{"depth":999}`)})
	// Alert state: the violation's own alert, another firing one, a
	// resolved one and one of another instance.
	for _, rec := range []schemas.AlertRecord{
		{Fingerprint: "toy/i1/queue_deep/orders", Subject: "toy", Instance: "i1", Rule: "queue_deep", Key: "orders", State: schemas.AlertFiring},
		{Fingerprint: "toy/i1/disk_full/", Subject: "toy", Instance: "i1", Rule: "disk_full", State: schemas.AlertPending,
			Extra: json.RawMessage(`{"severity":"warning","summary":"disk 91% full"}`)},
		{Fingerprint: "toy/i1/old/", Subject: "toy", Instance: "i1", Rule: "old", State: schemas.AlertResolved},
		{Fingerprint: "toy/i2/queue_deep/orders", Subject: "toy", Instance: "i2", Rule: "queue_deep", Key: "orders", State: schemas.AlertFiring},
	} {
		b, _ := json.Marshal(rec)
		if _, err := w.alerts.Put(ctx, rec.Fingerprint, b); err != nil {
			t.Fatal(err)
		}
	}
	// An earlier drain, succeeded.
	req := schemas.ActionRequest{ID: "act-1", Subject: "toy", Instance: "i1", Action: "drain", Params: map[string]any{"queue": "orders"},
		RequestedBy: "sre", RequestedAt: w.at.Add(-time.Minute)}
	w.publish(ctx, "operator.action.requested.toy.i1", schemas.EventSpec{Type: schemas.TypeActionRequested, Source: "/cli/act",
		Subject: "toy/i1", ID: "act-1", Time: req.RequestedAt}, req)
	w.publish(ctx, "operator.action.completed.toy.i1", schemas.EventSpec{Type: schemas.TypeActionCompleted, Source: "/actuators/a",
		Subject: "toy/i1", ID: "act-1-done", Time: req.RequestedAt}, schemas.ActionResult{RequestID: "act-1", Subject: "toy",
		Instance: "i1", Action: "drain", Outcome: schemas.OutcomeSucceeded, Reason: "drained", Mode: schemas.ModeExecute,
		Attempts: 1, StartedAt: req.RequestedAt, FinishedAt: req.RequestedAt})
	return w
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func (w *world) publish(ctx context.Context, subject string, spec schemas.EventSpec, data any) {
	w.t.Helper()
	e, err := schemas.NewEvent(spec, data)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.b.Publish(ctx, subject, e); err != nil {
		w.t.Fatal(err)
	}
}

// violation is the firing queue_deep violation of toy/i1's orders queue.
func (w *world) violation(status string) event.Event {
	w.t.Helper()
	fired := w.at
	v := schemas.Violation{Subject: "toy", Instance: "i1", Rule: "queue_deep", Key: "orders", Fingerprint: "toy/i1/queue_deep/orders",
		Status: status, Severity: "warning", Summary: "queue is 40 deep", Episode: "ep1", ActiveAt: w.at, FiredAt: &fired}
	e, err := schemas.NewEvent(schemas.EventSpec{Type: schemas.TypeViolation, Source: "/evaluators/e", Subject: "toy/i1/queue_deep/orders",
		ID: "viol-" + status, Time: w.at, CorrelationID: "ep1"}, v)
	if err != nil {
		w.t.Fatal(err)
	}
	return e
}

func (w *world) diagnoser(reasoner diagnosis.Reasoner, api diagnosis.Getter) *diagnosis.Diagnoser {
	w.t.Helper()
	d, err := diagnosis.New(diagnosis.Config{WorkerID: "test"}, diagnosis.Deps{Events: w.b, Alerts: w.alerts, Publisher: w.b,
		Reasoner: reasoner, Subjects: map[string]diagnosis.Subject{"toy": {Playbook: w.pb, Catalog: w.cat, API: api,
			Prometheus: &diagnosis.PrometheusClient{URL: w.prom.URL}}}})
	if err != nil {
		w.t.Fatal(err)
	}
	return d
}

// stored reads the diagnoses on the bus.
func (w *world) stored() []event.Event {
	w.t.Helper()
	var out []event.Event
	err := w.b.ReadEvents(bustest.Context(w.t, 10*time.Second), schemas.StreamDiagnoses, time.Time{}, func(_ string, e event.Event, err error) error {
		if err != nil {
			w.t.Errorf("undecodable diagnosis: %v", err)
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return out
}

func TestDiagnoserGathersReasonsAndPublishes(t *testing.T) {
	w := newWorld(t)
	d := w.diagnoser(nil, &diagnosis.HTTPGetter{URLs: []string{"http://127.0.0.1:1", w.api.URL}})
	ctx := bustest.Context(t, 20*time.Second)
	v := w.violation(schemas.StatusFiring)
	if err := d.Handle(ctx, v); err != nil {
		t.Fatal(err)
	}
	if err := d.Handle(ctx, v); err != nil { // a redelivery
		t.Fatal(err)
	}
	if err := d.Handle(ctx, w.violation(schemas.StatusResolved)); err != nil {
		t.Fatal(err)
	}
	list := w.stored()
	if len(list) != 1 {
		t.Fatalf("%d diagnoses stored, want one for the firing violation, once", len(list))
	}
	e := list[0]
	if schemas.Extension(e, schemas.ExtCorrelationID) != "ep1" || schemas.Extension(e, schemas.ExtCausationID) != "viol-firing" ||
		e.Source() != "/diagnosis/test" {
		t.Errorf("event attributes: %s", e)
	}
	var diag schemas.Diagnosis
	if err := json.Unmarshal(e.Data(), &diag); err != nil {
		t.Fatal(err)
	}
	if diag.Mode != schemas.DiagnosisDeterministic || diag.Episode != "ep1" || diag.Rule != "queue_deep" || diag.Key != "orders" ||
		diag.ViolationID != "viol-firing" || diag.DurationMS <= 0 || diag.Error != "" {
		t.Errorf("diagnosis %+v", diag)
	}
	byID := map[string]schemas.EvidenceItem{}
	for _, it := range diag.Evidence {
		byID[it.ID] = it
		if it.Error != "" || it.At.IsZero() || it.Source == "" {
			t.Errorf("evidence %s: %+v", it.ID, it)
		}
	}
	for id, want := range map[string]string{
		"recent":    `{"all":[{"depth":5},{"depth":20},{"depth":40}],"count":3,"last":{"depth":40}}`,
		"alerts":    `[{"key":"","rule":"disk_full","severity":"warning","state":"pending","summary":"disk 91% full"}]`,
		"queue":     `{"consumers":0,"depth":40}`,
		"consumers": `[{"metric":{},"value":[1,"0"]}]`,
	} {
		if got := string(byID[id].Data); got != want {
			t.Errorf("evidence %s = %s, want %s", id, got, want)
		}
	}
	if !strings.Contains(string(byID["actions"].Data), `"id":"act-1"`) || !strings.Contains(string(byID["actions"].Data), `"outcome":"succeeded"`) {
		t.Errorf("actions evidence %s", byID["actions"].Data)
	}
	if !strings.HasPrefix(byID["queue"].Source, "GET "+w.api.URL+"/queues/orders") {
		t.Errorf("queue source %q: the first URL is down, the second answered", byID["queue"].Source)
	}
	top := diag.Top()
	if top.ID != "consumers_gone" || top.Certainty != schemas.CertaintyCertain || diag.Summary != "queue orders has no consumer left" ||
		top.SuggestedAction == nil || top.SuggestedAction.Params["queue"] != "orders" {
		t.Errorf("top hypothesis %+v, summary %q", top, diag.Summary)
	}
}

func TestDiagnoserRecordsFailedEvidence(t *testing.T) {
	w := newWorld(t)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	d := w.diagnoser(nil, &diagnosis.HTTPGetter{URLs: []string{down.URL}})
	diag, err := d.Diagnose(bustest.Context(t, 20*time.Second), w.violation(schemas.StatusFiring))
	if err != nil {
		t.Fatal(err)
	}
	var queue *schemas.EvidenceItem
	for i := range diag.Evidence {
		if diag.Evidence[i].ID == "queue" {
			queue = &diag.Evidence[i]
		}
	}
	if queue == nil || queue.Error == "" || queue.Data != nil || !strings.Contains(queue.Error, "connection refused") {
		t.Fatalf("the failed source is not a failed item: %+v", queue)
	}
	// Without the queue's word, only Prometheus speaks for consumers_gone.
	if top := diag.Top(); top.ID != "consumers_gone" || top.Certainty != schemas.CertaintyLikely || strings.Contains(strings.Join(top.Supports, ","), "queue") {
		t.Errorf("top %+v", top)
	}

	// No API at all: said, not skipped.
	d = w.diagnoser(nil, nil)
	diag, err = d.Diagnose(bustest.Context(t, 20*time.Second), w.violation(schemas.StatusFiring))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, it := range diag.Evidence {
		if it.ID == "queue" {
			found = it.Error == "no API endpoint configured for toy"
		}
	}
	if !found {
		t.Errorf("no failed item for the unconfigured API: %+v", diag.Evidence)
	}
}

// failingReasoner fails after spending tokens.
type failingReasoner struct{}

func (failingReasoner) Reason(context.Context, *diagnosis.Input) (diagnosis.Output, error) {
	return diagnosis.Output{Model: "m1", InputTokens: 1200, OutputTokens: 30, Notes: []string{"dropped a citation of x"},
		Evidence: []schemas.EvidenceItem{{ID: "tool1_http_get", Source: "GET /q", At: time.Now(), Data: json.RawMessage(`{}`)}}}, errors.New("the model timed out")
}

// toolReasoner asks for more evidence through a tool and cites it.
type toolReasoner struct {
	tools         []string
	deterministic []schemas.Hypothesis
}

func (r *toolReasoner) Reason(ctx context.Context, in *diagnosis.Input) (diagnosis.Output, error) {
	r.deterministic = in.Deterministic
	for _, tl := range in.Tools.Tools() {
		r.tools = append(r.tools, tl.Name)
	}
	got := in.Tools.Run(ctx, diagnosis.ToolHTTPGet, json.RawMessage(`{"path":"/queues/orders"}`))
	bad := in.Tools.Run(ctx, diagnosis.ToolObservations, json.RawMessage(`{"last":500}`))
	return diagnosis.Output{Mode: schemas.DiagnosisLLM, Model: "m1", Evidence: []schemas.EvidenceItem{got, bad},
		Hypotheses: []schemas.Hypothesis{{ID: "consumers_gone", Cause: "no consumer", Certainty: schemas.CertaintyCertain,
			Supports: []string{got.ID}, Contradicts: []string{}}}}, nil
}

func TestDiagnoserReasoners(t *testing.T) {
	w := newWorld(t)
	ctx := bustest.Context(t, 20*time.Second)
	api := &diagnosis.HTTPGetter{URLs: []string{w.api.URL}}

	diag, err := w.diagnoser(failingReasoner{}, api).Diagnose(ctx, w.violation(schemas.StatusFiring))
	if err != nil {
		t.Fatal(err)
	}
	if diag.Mode != schemas.DiagnosisDeterministic || diag.Top().ID != "consumers_gone" || !strings.Contains(diag.Error, "the model timed out") ||
		diag.InputTokens != 1200 || diag.Model != "m1" {
		t.Errorf("a failed reasoner did not fall back with the tokens it spent: %+v", diag)
	}
	if len(diag.Notes) != 1 || diag.Evidence[len(diag.Evidence)-1].ID != "tool1_http_get" {
		t.Errorf("a failed reasoner's notes and tool evidence were lost: %+v", diag)
	}

	tr := &toolReasoner{}
	calls := w.apiCalls.Load()
	diag, err = w.diagnoser(tr, api).Diagnose(ctx, w.violation(schemas.StatusFiring))
	if err != nil {
		t.Fatal(err)
	}
	if diag.Mode != schemas.DiagnosisLLM || len(diag.Evidence) != 7 {
		t.Fatalf("diagnosis %+v", diag)
	}
	if len(tr.deterministic) == 0 || tr.deterministic[0].ID != "consumers_gone" {
		t.Errorf("the reasoner did not get the playbook's answer: %+v", tr.deterministic)
	}
	if w.apiCalls.Load()-calls != 2 {
		t.Errorf("%d API calls, want the playbook's one and the tool's one", w.apiCalls.Load()-calls)
	}
	tool, bad := diag.Evidence[5], diag.Evidence[6]
	if tool.ID != diag.Top().Supports[0] || string(tool.Data) != `{"consumers":0,"depth":40}` || tool.Error != "" {
		t.Errorf("tool evidence %+v", tool)
	}
	if bad.Error == "" || bad.ID == tool.ID {
		t.Errorf("a bad tool input is not a failed item: %+v", bad)
	}
	want := []string{diagnosis.ToolObservations, diagnosis.ToolAlerts, diagnosis.ToolActions, diagnosis.ToolHTTPGet, diagnosis.ToolPrometheus}
	if strings.Join(tr.tools, ",") != strings.Join(want, ",") {
		t.Errorf("tools %v, want %v", tr.tools, want)
	}
}

func TestDiagnoserRefusesWhatIsNotAViolation(t *testing.T) {
	w := newWorld(t)
	d := w.diagnoser(nil, nil)
	e := event.New()
	e.SetType(schemas.TypeObservation)
	e.SetID("x")
	if _, err := d.Diagnose(context.Background(), e); !errors.Is(err, schemas.ErrPermanent) {
		t.Errorf("an observation: %v", err)
	}
	v := w.violation(schemas.StatusFiring)
	_ = v.SetData("application/json", []byte(`{"subject": 5}`))
	if _, err := d.Diagnose(context.Background(), v); !errors.Is(err, schemas.ErrPermanent) {
		t.Errorf("an undecodable violation: %v", err)
	}
}
