package pdapi_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/operator-dev/operator/subjects/tikv/pdapi"
)

func TestSchedulers(t *testing.T) {
	_, c := newFixtureServer(t, map[string]fixture{"GET /schedulers": {file: "schedulers.json"}})
	names, err := c.Schedulers(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 5 || !slices.Contains(names, pdapi.EvictLeaderScheduler) {
		t.Fatalf("schedulers %v", names)
	}
}

func TestEvictLeaderStores(t *testing.T) {
	const route = "GET /scheduler-config/evict-leader-scheduler/list"
	tests := []struct {
		name    string
		f       fixture
		want    []uint64
		wantErr bool
	}{
		{"two stores", fixture{file: "scheduler_config_evict_leader.json"}, []uint64{1, 3}, false},
		{"scheduler left with no stores (tikv/pd#9908)", fixture{file: "scheduler_config_evict_leader_empty.json"}, []uint64{}, false},
		{"no scheduler", fixture{status: http.StatusNotFound, file: "errors/scheduler_not_found.txt", contentType: "text/plain; charset=utf-8"}, nil, false},
		{"PD error is not an empty answer", fixture{status: http.StatusInternalServerError, file: "errors/not_bootstrapped.json"}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, c := newFixtureServer(t, map[string]fixture{route: tc.f})
			got, err := c.EvictLeaderStores(testCtx(t))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("stores %v, want %v", got, tc.want)
			}
		})
	}

	// A PD without the route answers the mux's 404 page, which is not "no
	// scheduler": the client must say it could not look.
	_, c := newFixtureServer(t, map[string]fixture{})
	if _, err := c.EvictLeaderStores(testCtx(t)); err == nil {
		t.Fatal("an unknown route was read as no evict-leader scheduler")
	}
}

func TestAddEvictLeader(t *testing.T) {
	for _, file := range []string{"scheduler_created.json", "scheduler_applied.json"} {
		t.Run(file, func(t *testing.T) {
			fs, c := newFixtureServer(t, map[string]fixture{"POST /schedulers": {file: file}})
			ctx := pdapi.WithIdempotencyKey(testCtx(t), "req-42")
			if err := c.AddEvictLeader(ctx, 3); err != nil {
				t.Fatal(err)
			}
			got := fs.last()
			if got.Body != `{"name":"evict-leader-scheduler","store_id":3}` {
				t.Fatalf("body %s", got.Body)
			}
			if got.IdempotencyKey != "req-42" {
				t.Fatalf("Idempotency-Key %q", got.IdempotencyKey)
			}
		})
	}
}

func TestRemoveEvictLeader(t *testing.T) {
	const route = "DELETE /schedulers/evict-leader-scheduler-3"
	tests := []struct {
		name    string
		f       fixture
		wantErr bool
	}{
		{"removed (200, body null)", fixture{file: "null.json"}, false},
		{"already gone (404, body null) is done", fixture{status: http.StatusNotFound, file: "null.json"}, false},
		{"PD failure is an error", fixture{status: http.StatusInternalServerError, file: "errors/not_bootstrapped.json"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs, c := newFixtureServer(t, map[string]fixture{route: tc.f})
			err := c.RemoveEvictLeader(testCtx(t), 3)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if got := fs.last(); got.Method != http.MethodDelete || got.Path != "/pd/api/v1/schedulers/evict-leader-scheduler-3" {
				t.Fatalf("request %+v", got)
			}
		})
	}
}

func TestIdempotencyKeyOnlyOnMutations(t *testing.T) {
	fs, c := newFixtureServer(t, map[string]fixture{
		"GET /schedulers": {file: "schedulers.json"},
		"DELETE /schedulers/evict-leader-scheduler-1": {file: "null.json"},
	})
	ctx := pdapi.WithIdempotencyKey(testCtx(t), "req-7")
	if _, err := c.Schedulers(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveEvictLeader(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveEvictLeader(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	reqs := fs.requests()
	if reqs[0].IdempotencyKey != "" || reqs[1].IdempotencyKey != "req-7" || reqs[2].IdempotencyKey != "" {
		t.Fatalf("keys: %q %q %q", reqs[0].IdempotencyKey, reqs[1].IdempotencyKey, reqs[2].IdempotencyKey)
	}
}

func TestEvictLeaderRejectsStoreZero(t *testing.T) {
	fs, c := newFixtureServer(t, map[string]fixture{})
	if err := c.AddEvictLeader(testCtx(t), 0); err == nil {
		t.Error("AddEvictLeader(0) succeeded")
	}
	if err := c.RemoveEvictLeader(testCtx(t), 0); err == nil {
		t.Error("RemoveEvictLeader(0) succeeded")
	}
	if n := len(fs.requests()); n != 0 {
		t.Fatalf("%d requests sent", n)
	}
	var pe *pdapi.Error
	if errors.As(c.AddEvictLeader(testCtx(t), 0), &pe) {
		t.Fatal("a local validation error is a *pdapi.Error")
	}
}
