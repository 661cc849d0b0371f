package tests

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/operator-dev/operator/actuators"
	"github.com/operator-dev/operator/diagnosis"
	"github.com/operator-dev/operator/evaluators"
	"github.com/operator-dev/operator/internal/bus"
	"github.com/operator-dev/operator/internal/bus/bustest"
	"github.com/operator-dev/operator/observers"
	"github.com/operator-dev/operator/pipeline"
	"github.com/operator-dev/operator/schemas"
	"github.com/operator-dev/operator/subjects/tikv"
	"github.com/operator-dev/operator/subjects/tikv/pdapi"
	"github.com/operator-dev/operator/subjects/tikv/pdapi/pdfake"
	"github.com/operator-dev/operator/subjects/tikv/tikvmetrics"
)

// e2eWait bounds each wait for an event in wall time.
const e2eWait = 20 * time.Second

// events records every event stored on the bus, in stream order per
// subject.
type events struct {
	mu   sync.Mutex
	list []event.Event
}

func (ev *events) add(e event.Event) {
	ev.mu.Lock()
	ev.list = append(ev.list, e)
	ev.mu.Unlock()
}

// find returns the first recorded event for which match holds.
func (ev *events) find(match func(e event.Event) bool) (event.Event, bool) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	for _, e := range ev.list {
		if match(e) {
			return e, true
		}
	}
	return event.Event{}, false
}

// waitFor polls the recorded events until match holds on one, and decodes
// its data into out.
func (ev *events) waitFor(t *testing.T, what string, out any, match func(e event.Event) bool) event.Event {
	t.Helper()
	var found event.Event
	bustest.Eventually(t, e2eWait, func() bool {
		e, ok := ev.find(match)
		found = e
		return ok
	}, "waiting for "+what)
	if out != nil {
		if err := json.Unmarshal(found.Data(), out); err != nil {
			t.Fatalf("%s: decode %s: %v", what, found.Type(), err)
		}
	}
	return found
}

func violationOf(e event.Event) (schemas.Violation, bool) {
	var v schemas.Violation
	if e.Type() != schemas.TypeViolation || json.Unmarshal(e.Data(), &v) != nil {
		return v, false
	}
	return v, true
}

func resultOf(e event.Event) (schemas.ActionResult, bool) {
	var r schemas.ActionResult
	if e.Type() != schemas.TypeActionCompleted || json.Unmarshal(e.Data(), &r) != nil {
		return r, false
	}
	return r, true
}

func verificationOf(e event.Event) (schemas.ActionVerification, bool) {
	var v schemas.ActionVerification
	if e.Type() != schemas.TypeActionVerified || json.Unmarshal(e.Data(), &v) != nil {
		return v, false
	}
	return v, true
}

func kvStore(t *testing.T, b *bus.Bus, bucket string) actuators.ControlStore {
	t.Helper()
	kv, err := b.KV(bustest.Context(t, 10*time.Second), bucket)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// pdRecorder records PD's mutating calls and their Idempotency-Key (the
// fake Prometheus, on the same server, is left out).
type pdRecorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *pdRecorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && strings.HasPrefix(req.URL.Path, pdapi.APIPrefix) {
			r.mu.Lock()
			r.calls = append(r.calls, req.Method+" "+req.URL.Path+" key="+req.Header.Get("Idempotency-Key"))
			r.mu.Unlock()
		}
		h.ServeHTTP(w, req)
	})
}

func (r *pdRecorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

// TestTiKVStoreDisconnectedEndToEnd runs the TiKV observer, the real rule
// engine with subjects/tikv/rules.yaml and the real actuator worker with
// the subject's executor over one embedded JetStream, against the fake PD: a store
// stops heartbeating, store_disconnected fires after its 30 s grace (event
// time), evict_leader runs against PD and is verified once the store has no
// leader left, the store comes back, cancel_evict_leader is requested by
// hand and verified, and the violation resolves.
//
// Time: observations are driven one by one at explicit times, 5 s apart
// (the fake PD's clock and the observations' ce-time), starting at the wall
// clock so the actuator's wall-clock gates (cooldowns, request age, the
// verification window) see them as current. The run takes a few seconds of
// wall time for about two minutes of event time.
func TestTiKVStoreDisconnectedEndToEnd(t *testing.T) {
	const (
		instance = "c1"
		interval = 5 * time.Second
	)
	t0 := time.Now().Truncate(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The cluster: stores 1-3; regions 101-112, store 3 leading six of
	// them, so the evict-leader scheduler (three leaders a step) needs two
	// steps to empty it.
	cluster := pdfake.New(pdfake.Options{Start: t0})
	for i, host := range []string{"tikv0", "tikv1", "tikv2"} {
		cluster.AddStore(uint64(i+1), host+":20160", host+":20180", 100<<30, 60<<30)
		cluster.SetP99(host+":20180", 8)
	}
	leaders := []uint64{1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3, 3}
	for i, l := range leaders {
		cluster.AddRegion(uint64(101+i), l, 1, 2, 3)
	}
	rec := &pdRecorder{}
	srv := httptest.NewServer(rec.wrap(cluster.Handler()))
	t.Cleanup(srv.Close)

	b := bustest.New(t)
	var seen events
	tailCtx, stopTail := context.WithCancel(context.Background())
	tailDone := make(chan struct{})
	go func() {
		defer close(tailDone)
		_ = b.Tail(tailCtx, "", t0.Add(-time.Minute), func(_ string, e event.Event, err error) {
			if err == nil {
				seen.add(e)
			}
		})
	}()
	t.Cleanup(func() { stopTail(); <-tailDone })

	// The evaluator, on the shipped rule set.
	sets := []*evaluators.RuleSet{}
	rs, err := tikv.Subject().RuleSet(evaluators.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sets = append(sets, rs)
	var wg sync.WaitGroup
	runCtx, stopRun := context.WithCancel(ctx)
	t.Cleanup(func() { stopRun(); wg.Wait() })
	wg.Go(func() {
		// Staleness is judged on the wall clock; the driven polls are
		// seconds apart in wall time, so give it room.
		cfg := evaluators.Config{WorkerID: "e2e", StaleAfter: 10 * time.Minute}
		if err := pipeline.RunEvaluator(runCtx, b, sets, cfg, 1); err != nil && runCtx.Err() == nil {
			t.Errorf("evaluator: %v", err)
		}
	})

	// The diagnoser, on the shipped playbook, reading PD and Prometheus.
	playbook, err := tikv.Subject().DiagnosisPlaybook()
	if err != nil {
		t.Fatal(err)
	}
	catalog, err := tikv.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() {
		subjects := map[string]diagnosis.Subject{tikv.Name: {Playbook: playbook, Catalog: catalog,
			API: &diagnosis.HTTPGetter{URLs: []string{srv.URL}}, Prometheus: &diagnosis.PrometheusClient{URL: srv.URL}}}
		if err := pipeline.RunDiagnoser(runCtx, b, diagnosis.Config{WorkerID: "e2e"}, subjects, nil, 1); err != nil && runCtx.Err() == nil {
			t.Errorf("diagnoser: %v", err)
		}
	})

	// The actuator, in execute mode, on the shipped catalog.
	pd, err := pdapi.New(pdapi.Config{URLs: []string{srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	exec, err := tikv.NewExecutor(pd)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := tikv.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	deps, err := pipeline.ActuatorDeps(ctx, b, map[string]actuators.Subject{tikv.Name: {Catalog: cat, Executor: exec}})
	if err != nil {
		t.Fatal(err)
	}
	worker, err := actuators.New(actuators.Config{
		WorkerID: "e2e", Mode: schemas.ModeExecute,
		ExecuteTimeout: 5 * time.Second, RetryBackoff: 10 * time.Millisecond, MaxRetryBackoff: 50 * time.Millisecond,
		VerifyGrace: 200 * time.Millisecond, AckWait: 5 * time.Second, Redelivery: []time.Duration{50 * time.Millisecond},
	}, deps)
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() {
		if err := worker.Run(runCtx); err != nil {
			t.Errorf("actuator: %v", err)
		}
	})

	// The observer, polled by hand at explicit times.
	var clock atomic.Int64
	obs, err := tikv.NewObserver(tikv.ObserverConfig{
		PD:         pdapi.Config{URLs: []string{srv.URL}},
		Prometheus: tikvmetrics.Config{URL: srv.URL},
		Now:        func() time.Time { return time.Unix(0, clock.Load()) },
	})
	if err != nil {
		t.Fatal(err)
	}
	runner, err := observers.New(observers.Config{Subject: tikv.Name, Instance: instance, Interval: interval,
		Subjects: b.Subjects()}, obs, b)
	if err != nil {
		t.Fatal(err)
	}
	var at time.Duration // event time since t0 of the last poll
	poll := func(d time.Duration) {
		t.Helper()
		at = d
		now := t0.Add(d)
		cluster.Step(now)
		clock.Store(now.UnixNano())
		if err := runner.Poll(ctx, now); err != nil {
			t.Fatalf("poll at +%s: %v", d, err)
		}
	}
	wallStart := time.Now()
	fingerprint := "tikv/" + instance + "/store_disconnected/3"
	isViolation := func(status string) func(event.Event) bool {
		return func(e event.Event) bool {
			v, ok := violationOf(e)
			return ok && v.Fingerprint == fingerprint && v.Status == status
		}
	}

	// 1. Healthy, then store 3 stops heartbeating after the poll at +10s.
	for d := time.Duration(0); d <= 10*time.Second; d += interval {
		poll(d)
	}
	cluster.StopHeartbeats(3)
	// +15s..+30s: at most 20 s without a heartbeat, still Up. +35s:
	// Disconnected (pending). The grace of 30 s ends at +65s.
	for d := 15 * time.Second; d < 65*time.Second; d += interval {
		poll(d)
	}
	if state := cluster.StoreState(3); state != pdapi.StoreDisconnected {
		t.Fatalf("store 3 is %s at +%s, want Disconnected", state, at)
	}
	// Within the grace, by event time, the alert is pending, however
	// little wall time has passed.
	alerts := kvStore(t, b, schemas.BucketEvaluatorState)
	rec60 := waitAlert(t, alerts, fingerprint, t0.Add(at))
	if rec60.State != schemas.AlertPending || !rec60.ActiveAt.Equal(t0.Add(35*time.Second)) {
		t.Fatalf("at +%s store_disconnected is %s since %v, want pending since +35s", at, rec60.State, rec60.ActiveAt)
	}
	if _, fired := seen.find(isViolation(schemas.StatusFiring)); fired {
		t.Fatalf("store_disconnected fired before its 30 s grace ended (last poll at +%s)", at)
	}
	poll(65 * time.Second)

	// 2. store_disconnected fires at +65s and requests evict_leader.
	var fired schemas.Violation
	seen.waitFor(t, "store_disconnected firing", &fired, isViolation(schemas.StatusFiring))
	if got, want := fired.FiredAt.Sub(t0), 65*time.Second; got != want {
		t.Errorf("fired at +%s, want +%s (30 s after the first Disconnected observation at +35s)", got, want)
	}
	if got, want := fired.ActiveAt.Sub(t0), 35*time.Second; got != want {
		t.Errorf("pending since +%s, want +%s", got, want)
	}
	// The episode is diagnosed: the store is lost, PD and the other stores
	// are fine, and the playbook suggests the action the rule requested.
	var diag schemas.Diagnosis
	seen.waitFor(t, "store_disconnected diagnosed", &diag, func(e event.Event) bool {
		return e.Type() == schemas.TypeDiagnosis && schemas.Extension(e, schemas.ExtCorrelationID) == fired.Episode
	})
	top := diag.Top()
	t.Logf("diagnosis in %.0f ms: %s %s: %s (supported by %v)", diag.DurationMS, top.Certainty, top.ID, top.Cause, top.Supports)
	if top.ID != "store_lost" || top.Certainty != schemas.CertaintyCertain || top.SuggestedAction == nil ||
		top.SuggestedAction.Action != "evict_leader" || top.SuggestedAction.Params["store_id"] != "3" {
		t.Errorf("diagnosis %+v", diag)
	}
	for _, item := range diag.Evidence {
		if item.Error != "" && item.ID != "grpc_p99" {
			t.Errorf("evidence %s failed: %s", item.ID, item.Error)
		}
	}

	var req schemas.ActionRequest
	seen.waitFor(t, "evict_leader requested", &req, func(e event.Event) bool {
		return e.Type() == schemas.TypeActionRequested && strings.Contains(string(e.Data()), `"evict_leader"`)
	})
	if req.Params["store_id"] != "3" || req.Violation == nil || req.Violation.Fingerprint != fingerprint {
		t.Fatalf("request %+v", req)
	}

	// 3. The actuator runs it against PD.
	var res schemas.ActionResult
	seen.waitFor(t, "evict_leader completed", &res, func(e event.Event) bool {
		r, ok := resultOf(e)
		return ok && r.RequestID == req.ID && r.Outcome != schemas.OutcomeAwaitingApproval
	})
	if res.Outcome != schemas.OutcomeSucceeded {
		t.Fatalf("evict_leader %s: %s", res.Outcome, res.Reason)
	}
	if got := cluster.EvictedStores(); len(got) != 1 || got[0] != 3 {
		t.Fatalf("PD evicts %v, want [3]", got)
	}
	if calls := rec.list(); len(calls) != 1 || calls[0] != "POST /pd/api/v1/schedulers key="+req.ID {
		t.Fatalf("PD mutations %q, want one POST /schedulers with the request id as Idempotency-Key", calls)
	}

	// 4. The leaders leave store 3, three a step: verified once none is
	// left.
	var counts []int
	for _, d := range []time.Duration{70 * time.Second, 75 * time.Second} {
		poll(d)
		counts = append(counts, cluster.LeaderCount(3))
	}
	if counts[0] != 3 || counts[1] != 0 {
		t.Fatalf("store 3 leader counts %v after the eviction, want [3 0]", counts)
	}
	var ver schemas.ActionVerification
	seen.waitFor(t, "evict_leader verified", &ver, func(e event.Event) bool {
		v, ok := verificationOf(e)
		return ok && v.RequestID == req.ID
	})
	if !ver.Verified {
		t.Fatalf("evict_leader not verified: %s", ver.Reason)
	}
	if !strings.Contains(string(ver.Evidence), `"leader_count":0`) {
		t.Errorf("verification evidence %s does not show store 3 without leaders", ver.Evidence)
	}

	// 5. Store 3 heartbeats again: Up at +80s; the alert keeps firing for
	// keep_firing_for (30 s) while someone cancels the eviction by hand.
	cluster.ResumeHeartbeats(3)
	poll(80 * time.Second)
	cancelReq := schemas.ActionRequest{ID: "manual-cancel-evict-3", Subject: tikv.Name, Instance: instance,
		Action: "cancel_evict_leader", Params: map[string]any{"store_id": "3"}, Reason: "store 3 is back",
		RequestedBy: "sre@example.com", RequestedAt: time.Now().UTC()}
	publishRequest(t, b, cancelReq)
	var cancelRes schemas.ActionResult
	seen.waitFor(t, "cancel_evict_leader completed", &cancelRes, func(e event.Event) bool {
		r, ok := resultOf(e)
		return ok && r.RequestID == cancelReq.ID
	})
	if cancelRes.Outcome != schemas.OutcomeSucceeded {
		t.Fatalf("cancel_evict_leader %s: %s", cancelRes.Outcome, cancelRes.Reason)
	}
	if got := cluster.EvictedStores(); len(got) != 0 {
		t.Fatalf("PD still evicts %v", got)
	}
	if _, resolved := seen.find(isViolation(schemas.StatusResolved)); resolved {
		t.Fatalf("store_disconnected resolved before keep_firing_for ended")
	}

	// 6. Polls go on: the cancellation is verified, and the violation
	// resolves 30 s after the store came back.
	for d := 85 * time.Second; d <= 110*time.Second; d += interval {
		poll(d)
	}
	var cancelVer schemas.ActionVerification
	seen.waitFor(t, "cancel_evict_leader verified", &cancelVer, func(e event.Event) bool {
		v, ok := verificationOf(e)
		return ok && v.RequestID == cancelReq.ID
	})
	if !cancelVer.Verified {
		t.Fatalf("cancel_evict_leader not verified: %s", cancelVer.Reason)
	}
	var resolved schemas.Violation
	seen.waitFor(t, "store_disconnected resolved", &resolved, isViolation(schemas.StatusResolved))
	if resolved.Episode != fired.Episode {
		t.Errorf("resolved episode %s, fired %s", resolved.Episode, fired.Episode)
	}
	if got, want := resolved.ResolvedAt.Sub(t0), 110*time.Second; got != want {
		t.Errorf("resolved at +%s, want +%s (30 s after the store was back at +80s)", got, want)
	}
	if len(rec.list()) != 2 {
		t.Errorf("PD mutations %q, want the eviction and its cancellation only", rec.list())
	}
	// No other violation fired on the way (no rule_error, no other rule).
	if e, ok := seen.find(func(e event.Event) bool {
		v, ok := violationOf(e)
		return ok && v.Rule != "store_disconnected"
	}); ok {
		v, _ := violationOf(e)
		t.Errorf("unexpected violation %s %s: %s", v.Rule, v.Key, v.Summary)
	}
	t.Logf("event time +%s (%d polls) in %s of wall time", at, int(at/interval)+1, time.Since(wallStart).Round(time.Millisecond))
}

// waitAlert waits until the evaluator has applied the observation made at
// `at` to the alert with the fingerprint, and returns the alert's record.
func waitAlert(t *testing.T, alerts schemas.Store, fingerprint string, at time.Time) schemas.AlertRecord {
	t.Helper()
	var rec schemas.AlertRecord
	bustest.Eventually(t, e2eWait, func() bool {
		b, _, err := alerts.Get(context.Background(), fingerprint)
		if err != nil {
			return false
		}
		return json.Unmarshal(b, &rec) == nil && !rec.LastEvalAt.Before(at)
	}, "the evaluator to apply the observation at "+at.Format(time.RFC3339))
	return rec
}

// publishRequest publishes an action request as a person would with
// `operator act`.
func publishRequest(t *testing.T, b *bus.Bus, req schemas.ActionRequest) {
	t.Helper()
	subj, err := b.Subjects().ActionRequested(req.Subject, req.Instance)
	if err != nil {
		t.Fatal(err)
	}
	e, err := schemas.NewEvent(schemas.EventSpec{Type: schemas.TypeActionRequested, Source: "/people/sre",
		Subject: req.Subject + "/" + req.Instance, ID: req.ID, Time: req.RequestedAt}, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(bustest.Context(t, 10*time.Second), subj, e); err != nil {
		t.Fatal(err)
	}
}
