package pdapi_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/operator-dev/operator/subjects/tikv/pdapi"
)

func TestAddTransferLeader(t *testing.T) {
	tests := []struct {
		name          string
		f             fixture
		wantErr       error // nil for success
		wantTransient bool
	}{
		{"created", fixture{file: "operator_created.json"}, nil, false},
		{"region busy with another operator", fixture{status: http.StatusInternalServerError, file: "errors/operator_exists.json"}, pdapi.ErrOperatorExists, true},
		{"target holds no voter", fixture{status: http.StatusInternalServerError, file: "errors/no_voter.json"}, errAny, false},
		{"leader already there", fixture{status: http.StatusInternalServerError, file: "errors/no_step.json"}, errAny, false},
		{"wrong key (400)", fixture{status: http.StatusBadRequest, file: "errors/missing_to_store_id.json"}, errAny, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs, c := newFixtureServer(t, map[string]fixture{"POST /operators": tc.f})
			err := c.AddTransferLeader(testCtx(t), 8, 2)
			// The key is to_store_id: PD answers 400 for store_id.
			if got := fs.last().Body; got != `{"name":"transfer-leader","region_id":8,"to_store_id":2}` {
				t.Fatalf("body %s", got)
			}
			checkErr(t, err, tc.wantErr, tc.wantTransient)
		})
	}
}

// errAny stands for "some error" in tables.
var errAny = errors.New("any error")

func checkErr(t *testing.T, err, want error, wantTransient bool) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("unexpected error %v", err)
	case want == nil:
		return
	case err == nil:
		t.Fatalf("no error, want %v", want)
	case want != errAny && !errors.Is(err, want):
		t.Fatalf("err %v, want %v", err, want)
	}
	if got := pdapi.IsTransient(err); got != wantTransient {
		t.Fatalf("IsTransient(%v) = %v, want %v", err, got, wantTransient)
	}
}

func TestAddTransferPeer(t *testing.T) {
	fs, c := newFixtureServer(t, map[string]fixture{"POST /operators": {file: "operator_created.json"}})
	if err := c.AddTransferPeer(testCtx(t), 8, 3, 4); err != nil {
		t.Fatal(err)
	}
	if got := fs.last().Body; got != `{"from_store_id":3,"name":"transfer-peer","region_id":8,"to_store_id":4}` {
		t.Fatalf("body %s", got)
	}
	for _, args := range [][3]uint64{{0, 1, 2}, {8, 0, 2}, {8, 1, 0}, {8, 2, 2}} {
		if err := c.AddTransferPeer(testCtx(t), args[0], args[1], args[2]); err == nil {
			t.Errorf("AddTransferPeer%v accepted", args)
		}
	}
}

func TestOperators(t *testing.T) {
	for _, file := range []string{"operators.json", "operators_strings.json"} {
		t.Run(file, func(t *testing.T) {
			fs, c := newFixtureServer(t, map[string]fixture{"GET /operators?object=1": {file: file}})
			ops, err := c.Operators(testCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			if len(ops) != 1 || ops[0].RegionID != 8 || !strings.HasPrefix(ops[0].Desc, "admin-transfer-leader") {
				t.Fatalf("operators %+v", ops)
			}
			if fs.last().Query != "object=1" {
				t.Fatalf("query %q", fs.last().Query)
			}
		})
	}
	_, c := newFixtureServer(t, map[string]fixture{"GET /operators?object=1": {file: "operators.json"}})
	ops, _ := c.Operators(testCtx(t))
	if ops[0].Status != pdapi.OpStarted || ops[0].Status.String() != "STARTED" || ops[0].Timeout != "1m0s" {
		t.Fatalf("operator %+v", ops[0])
	}
}

func TestOperatorStatus(t *testing.T) {
	_, c := newFixtureServer(t, map[string]fixture{
		"GET /operators/8":  {file: "operator_status_running.json"},
		"GET /operators/14": {file: "operator_status_success.json"},
		"GET /operators/99": {status: http.StatusInternalServerError, file: "errors/operator_not_found.json"},
	})
	ctx := testCtx(t)
	op, err := c.OperatorStatus(ctx, 8)
	if err != nil {
		t.Fatal(err)
	}
	if op.State != pdapi.RegionOpRunning || !strings.HasPrefix(op.Operator, "admin-transfer-leader {transfer leader: store 1 to 2}") {
		t.Fatalf("status %+v", op)
	}
	op, err = c.OperatorStatus(ctx, 14)
	if err != nil || op.State != pdapi.RegionOpSuccess {
		t.Fatalf("status %+v, %v", op, err)
	}
	// "operator not found" comes as a 500: it still means not found.
	_, err = c.OperatorStatus(ctx, 99)
	checkErr(t, err, pdapi.ErrNotFound, false)
}

func TestParseRegionOperatorRejects(t *testing.T) {
	for _, s := range []string{"", "RUNNING", "status: RUNNING"} {
		if _, err := pdapi.ParseRegionOperator(s); err == nil {
			t.Errorf("ParseRegionOperator(%q) succeeded", s)
		}
	}
}
