package pdapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/operator-dev/operator/subjects/tikv/pdapi"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  pdapi.Config
		ok   bool
	}{
		{"one URL", pdapi.Config{URLs: []string{"http://pd0:2379"}}, true},
		{"no scheme", pdapi.Config{URLs: []string{"pd0:2379", "pd1:2379"}}, true},
		{"https with API prefix", pdapi.Config{URLs: []string{"https://pd0:2379/pd/api/v1/"}}, true},
		{"no URL", pdapi.Config{}, false},
		{"empty URL", pdapi.Config{URLs: []string{" "}}, false},
		{"bad scheme", pdapi.Config{URLs: []string{"ftp://pd0:2379"}}, false},
		{"negative timeout", pdapi.Config{URLs: []string{"pd0:2379"}, RequestTimeout: -time.Second}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if _, nerr := pdapi.New(tc.cfg); (nerr == nil) != tc.ok {
				t.Fatalf("New() = %v, want ok=%v", nerr, tc.ok)
			}
		})
	}
	c, err := pdapi.New(pdapi.Config{URLs: []string{"pd0:2379/pd/api/v1/"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.CurrentURL(); got != "http://pd0:2379" {
		t.Fatalf("CurrentURL() = %q", got)
	}
}

// TestErrorBodies: PD's error bodies are JSON strings, errcode objects,
// plain text or null; the message is PD's words in every case.
func TestErrorBodies(t *testing.T) {
	tests := []struct {
		name        string
		f           fixture
		wantMessage string
	}{
		{"JSON string", fixture{status: http.StatusInternalServerError, file: "errors/not_bootstrapped.json"},
			"[PD:cluster:ErrNotBootstrapped]TiKV cluster not bootstrapped, please start TiKV first"},
		{"errcode object", fixture{status: http.StatusBadRequest, file: "errors/invalid_input.json"},
			`strconv.ParseUint: parsing "abc": invalid syntax`},
		{"plain text", fixture{status: http.StatusBadRequest, file: "errors/scheduler_not_found.txt", contentType: "text/plain; charset=utf-8"},
			"scheduler not found"},
		{"null", fixture{status: http.StatusBadRequest, file: "null.json"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, c := newFixtureServer(t, map[string]fixture{"GET /stores": tc.f})
			_, err := c.Stores(testCtx(t))
			var pe *pdapi.Error
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want *pdapi.Error", err)
			}
			if pe.Message != tc.wantMessage || pe.Status != tc.f.status || pe.Method != http.MethodGet || !strings.HasSuffix(pe.URL, "/pd/api/v1/stores") {
				t.Fatalf("error %+v", pe)
			}
			if !strings.Contains(pe.Error(), http.StatusText(tc.f.status)) {
				t.Fatalf("Error() = %q", pe.Error())
			}
		})
	}
}

func TestErrorClassification(t *testing.T) {
	transportErr := &pdapi.Error{Method: "GET", URL: "u", Err: errors.New("connection refused")}
	canceled := &pdapi.Error{Method: "GET", URL: "u", Err: context.Canceled}
	tests := []struct {
		name      string
		err       *pdapi.Error
		transient bool
		is        []error
	}{
		{"connection refused", transportErr, true, nil},
		{"caller canceled", canceled, false, []error{context.Canceled}},
		{"429", &pdapi.Error{Status: 429}, true, nil},
		{"503 no leader", &pdapi.Error{Status: 503, Message: "[PD:apiutil:ErrRedirectNoLeader]redirect finds no leader"}, true, []error{pdapi.ErrNoLeader}},
		{"502", &pdapi.Error{Status: 502}, true, nil},
		{"500 not bootstrapped", &pdapi.Error{Status: 500, Message: "[PD:cluster:ErrNotBootstrapped]TiKV cluster not bootstrapped, please start TiKV first"}, true, []error{pdapi.ErrNotBootstrapped}},
		{"500 operator exists", &pdapi.Error{Status: 500, Message: "[PD:operator:ErrAddOperator]failed to add operator, maybe already have one"}, true, []error{pdapi.ErrOperatorExists}},
		{"500 operator not found", &pdapi.Error{Status: 500, Message: "[PD:operator:ErrOperatorNotFound]operator not found"}, false, []error{pdapi.ErrNotFound}},
		{"500 store not found (store limit)", &pdapi.Error{Status: 500, Message: "[PD:core:ErrStoreNotFound]store 9 not found"}, false, []error{pdapi.ErrNotFound}},
		{"500 no voter", &pdapi.Error{Status: 500, Message: "region has no voter in store 9"}, false, nil},
		{"500 no peer", &pdapi.Error{Status: 500, Message: "region has no peer in store 9"}, false, nil},
		{"500 unhealthy target may recover", &pdapi.Error{Status: 500, Message: "cannot transfer leader to 3: unhealthy"}, true, nil},
		{"500 store unhealthy may recover", &pdapi.Error{Status: 500, Message: "[PD:core:ErrStoreUnhealthy]store 3 is unhealthy"}, true, nil},
		{"400", &pdapi.Error{Status: 400, Message: "missing store id to transfer leader to"}, false, nil},
		{"404", &pdapi.Error{Status: 404}, false, []error{pdapi.ErrNotFound}},
		{"410", &pdapi.Error{Status: 410, Message: "[PD:core:ErrStoreRemoved]store 4 has been removed"}, false, []error{pdapi.ErrStoreRemoved}},
	}
	sentinels := []error{pdapi.ErrNotFound, pdapi.ErrOperatorExists, pdapi.ErrStoreRemoved, pdapi.ErrNotBootstrapped, pdapi.ErrNoLeader}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.IsTransient(); got != tc.transient {
				t.Errorf("IsTransient() = %v, want %v", got, tc.transient)
			}
			if got := pdapi.IsTransient(tc.err); got != tc.transient {
				t.Errorf("pdapi.IsTransient() = %v, want %v", got, tc.transient)
			}
			var classified interface{ Transient() bool }
			if !errors.As(fmt.Errorf("evict leader: %w", tc.err), &classified) || classified.Transient() != tc.transient {
				t.Errorf("a wrapped error does not report Transient() = %v", tc.transient)
			}
			for _, s := range sentinels {
				want := false
				for _, w := range tc.is {
					want = want || w == s
				}
				if got := errors.Is(tc.err, s); got != want {
					t.Errorf("errors.Is(%v) = %v, want %v", s, got, want)
				}
			}
			for _, w := range tc.is {
				if !errors.Is(tc.err, w) {
					t.Errorf("errors.Is(%v) = false", w)
				}
			}
		})
	}
	if pdapi.IsTransient(errors.New("decode failed")) {
		t.Error("a plain error is transient")
	}
}

// member is a fake PD member for failover tests: its behaviour can change
// and it counts the requests it gets.
type member struct {
	srv  *httptest.Server
	hits atomic.Int64
	mode atomic.Value // string: "ok", "noleader", "redirectfail", "pd500", "hang"
}

func newMember(t *testing.T, mode string) *member {
	t.Helper()
	m := &member{}
	m.mode.Store(mode)
	m.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.hits.Add(1)
		switch m.mode.Load().(string) {
		case "noleader":
			http.Error(w, "[PD:apiutil:ErrRedirectNoLeader]redirect finds no leader", http.StatusServiceUnavailable)
		case "redirectfail":
			http.Error(w, "[PD:apiutil:ErrRedirect]redirect failed", http.StatusInternalServerError)
		case "pd500":
			w.Header().Set("Content-Type", "application/json; charset=UTF-8")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write(readFixture(t, "errors/not_bootstrapped.json"))
		case "hang":
			<-r.Context().Done() // until the client's per-attempt timeout
		default:
			w.Header().Set("Content-Type", "application/json; charset=UTF-8")
			_, _ = w.Write(readFixture(t, "schedulers.json"))
		}
	}))
	t.Cleanup(m.srv.Close)
	return m
}

// deadURL returns the URL of a server that has been shut down: connection
// refused.
func deadURL(t *testing.T) string {
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	return u
}

func TestFailover(t *testing.T) {
	dead := deadURL(t)
	follower := newMember(t, "noleader")
	redirecting := newMember(t, "redirectfail")
	leader := newMember(t, "ok")
	c := newClient(t, dead, follower.srv.URL, redirecting.srv.URL, leader.srv.URL)
	ctx := testCtx(t)

	if _, err := c.Schedulers(ctx); err != nil {
		t.Fatalf("failover did not reach the leader: %v", err)
	}
	if c.CurrentURL() != leader.srv.URL {
		t.Fatalf("CurrentURL() = %s, want the leader %s", c.CurrentURL(), leader.srv.URL)
	}
	if follower.hits.Load() != 1 || redirecting.hits.Load() != 1 || leader.hits.Load() != 1 {
		t.Fatalf("hits: follower %d, redirecting %d, leader %d", follower.hits.Load(), redirecting.hits.Load(), leader.hits.Load())
	}

	// The next call goes straight to the URL that answered.
	if _, err := c.Schedulers(ctx); err != nil {
		t.Fatal(err)
	}
	if follower.hits.Load() != 1 || leader.hits.Load() != 2 {
		t.Fatalf("second call: follower %d, leader %d", follower.hits.Load(), leader.hits.Load())
	}

	// The leader goes away and the follower takes over: the client wraps
	// around the list and finds it.
	leader.mode.Store("noleader")
	follower.mode.Store("ok")
	if _, err := c.Schedulers(ctx); err != nil {
		t.Fatal(err)
	}
	if c.CurrentURL() != follower.srv.URL {
		t.Fatalf("CurrentURL() = %s, want %s", c.CurrentURL(), follower.srv.URL)
	}
}

// TestNoFailoverOnPDAnswer: a 500 with a JSON body is PD's own answer, which
// another member would only repeat.
func TestNoFailoverOnPDAnswer(t *testing.T) {
	first := newMember(t, "pd500")
	second := newMember(t, "ok")
	c := newClient(t, first.srv.URL, second.srv.URL)
	_, err := c.Schedulers(testCtx(t))
	if !errors.Is(err, pdapi.ErrNotBootstrapped) {
		t.Fatalf("err = %v", err)
	}
	if second.hits.Load() != 0 {
		t.Fatal("the client failed over on PD's own 500 answer")
	}
	if c.CurrentURL() != first.srv.URL {
		t.Fatal("the member that answered is not remembered")
	}
}

func TestFailoverAllDown(t *testing.T) {
	a, b := newMember(t, "noleader"), newMember(t, "noleader")
	c := newClient(t, a.srv.URL, b.srv.URL)
	_, err := c.Schedulers(testCtx(t))
	if !errors.Is(err, pdapi.ErrNoLeader) || !pdapi.IsTransient(err) {
		t.Fatalf("err = %v", err)
	}
	if a.hits.Load() != 1 || b.hits.Load() != 1 {
		t.Fatalf("hits %d %d, want each URL tried once", a.hits.Load(), b.hits.Load())
	}

	c = newClient(t, deadURL(t), deadURL(t))
	_, err = c.Schedulers(testCtx(t))
	var pe *pdapi.Error
	if !errors.As(err, &pe) || pe.Status != 0 || pe.Err == nil || !pdapi.IsTransient(err) {
		t.Fatalf("err = %#v", err)
	}
}

// TestPerAttemptTimeout: a member that never answers costs one
// RequestTimeout, then the next member answers.
func TestPerAttemptTimeout(t *testing.T) {
	hung, ok := newMember(t, "hang"), newMember(t, "ok")
	c, err := pdapi.New(pdapi.Config{URLs: []string{hung.srv.URL, ok.srv.URL}, RequestTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Schedulers(testCtx(t)); err != nil {
		t.Fatalf("no failover after the attempt timed out: %v", err)
	}
	if ok.hits.Load() != 1 {
		t.Fatalf("second member hits %d", ok.hits.Load())
	}
}

// TestCallerCancelStopsFailover: when the caller's ctx ends, the client
// does not go on to the other URLs, and the error is not transient.
func TestCallerCancelStopsFailover(t *testing.T) {
	hung, other := newMember(t, "hang"), newMember(t, "ok")
	c := newClient(t, hung.srv.URL, other.srv.URL)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Schedulers(ctx)
		done <- err
	}()
	for hung.hits.Load() == 0 { // wait until the request is in flight
		select {
		case err := <-done:
			t.Fatalf("returned early: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) || pdapi.IsTransient(err) {
		t.Fatalf("err = %v, transient %v", err, pdapi.IsTransient(err))
	}
	if other.hits.Load() != 0 {
		t.Fatal("the client failed over after the caller canceled")
	}
}

func TestResponseSizeCap(t *testing.T) {
	m := newMember(t, "ok")
	c, err := pdapi.New(pdapi.Config{URLs: []string{m.srv.URL}, MaxResponseBytes: 16})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Schedulers(testCtx(t)); err == nil || !strings.Contains(err.Error(), "larger than 16 bytes") {
		t.Fatalf("err = %v", err)
	}
}

func TestUndecodableAnswer(t *testing.T) {
	_, c := newFixtureServer(t, map[string]fixture{"GET /stores": {file: "schedulers.json"}})
	_, err := c.Stores(testCtx(t))
	if err == nil || pdapi.IsTransient(err) {
		t.Fatalf("err = %v", err)
	}
}
