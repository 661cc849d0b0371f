package statuspage

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/operator-dev/operator/actuators"
	"github.com/operator-dev/operator/internal/bus"
	"github.com/operator-dev/operator/internal/bus/bustest"
	"github.com/operator-dev/operator/schemas"
)

const testToken = "s3cret-token"

func TestControls(t *testing.T) {
	tp := newTestPage(t, Config{Token: testToken})
	ctx := bustest.Context(t, time.Minute)
	control, err := tp.b.KV(ctx, schemas.BucketControl)
	if err != nil {
		t.Fatal(err)
	}
	approvalState := func(id string) actuators.ApprovalState {
		t.Helper()
		raw, _, err := control.Get(ctx, "approval/"+id)
		if err != nil {
			t.Fatal(err)
		}
		var a actuators.Approval
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatal(err)
		}
		return a.State
	}
	killSwitch := func() actuators.KillSwitch {
		t.Helper()
		st, err := actuators.ReadStatus(ctx, control, time.Now())
		if err != nil || len(st.KillSwitches) != 1 {
			t.Fatalf("kill switches %+v, %v", st.KillSwitches, err)
		}
		return st.KillSwitches[0]
	}
	json := "application/json"
	tests := []struct {
		name        string
		path        string
		body        string
		contentType string
		// header and token: "" leaves them out.
		header, token string
		site          string // Sec-Fetch-Site
		setup         func()
		status        int
		check         func(t *testing.T)
	}{
		{name: "approve", path: "/api/v1/approvals/act-ok/approve", body: `{"by":"carol"}`, setup: func() { putApproval(t, tp, "act-ok", time.Now()) },
			status: 200, check: func(t *testing.T) {
				if s := approvalState("act-ok"); s != actuators.ApprovalApproved {
					t.Errorf("approval %s", s)
				}
				if !stored(t, tp.b, schemas.DeriveID("act-ok", "decision")) {
					t.Error("the approved request was not resubmitted to the actuators")
				}
			}},
		{name: "approve with an empty body", path: "/api/v1/approvals/act-empty/approve", body: ``, setup: func() { putApproval(t, tp, "act-empty", time.Now()) },
			status: 200},
		{name: "reject with a reason", path: "/api/v1/approvals/act-no/reject", body: `{"reason":"wrong key"}`, setup: func() { putApproval(t, tp, "act-no", time.Now()) },
			status: 200, check: func(t *testing.T) {
				if s := approvalState("act-no"); s != actuators.ApprovalRejected {
					t.Errorf("approval %s", s)
				}
			}},
		{name: "reject without a reason", path: "/api/v1/approvals/act-r/reject", body: `{}`, setup: func() { putApproval(t, tp, "act-r", time.Now()) }, status: 400,
			check: func(t *testing.T) {
				if s := approvalState("act-r"); s != actuators.ApprovalPending {
					t.Errorf("approval %s", s)
				}
			}},
		{name: "reject what was approved", path: "/api/v1/approvals/act-ok/reject", body: `{"reason":"changed my mind"}`, status: 409},
		{name: "approve an unknown request", path: "/api/v1/approvals/act-nobody/approve", body: `{}`, status: 404},
		{name: "approve after the deadline", path: "/api/v1/approvals/act-late/approve", body: `{}`,
			setup: func() { putApproval(t, tp, "act-late", time.Now().Add(-2*time.Hour)) }, status: 409},
		{name: "without the control header", path: "/api/v1/approvals/act-h/approve", body: `{}`, header: "-", setup: func() { putApproval(t, tp, "act-h", time.Now()) },
			status: 403, check: func(t *testing.T) {
				if s := approvalState("act-h"); s != actuators.ApprovalPending {
					t.Errorf("approval %s", s)
				}
			}},
		{name: "as a form", path: "/api/v1/approvals/act-h/approve", body: `by=mallory`, contentType: "application/x-www-form-urlencoded", status: 415},
		{name: "as a multipart form", path: "/api/v1/approvals/act-h/approve", body: ``, contentType: "multipart/form-data; boundary=x", status: 415},
		{name: "as plain text", path: "/api/v1/approvals/act-h/approve", body: `{}`, contentType: "text/plain", status: 415},
		{name: "without the token", path: "/api/v1/approvals/act-h/approve", body: `{}`, token: "-", status: 401},
		{name: "with a wrong token", path: "/api/v1/approvals/act-h/approve", body: `{}`, token: "s3cret-tokem", status: 401},
		{name: "with a prefix of the token", path: "/api/v1/approvals/act-h/approve", body: `{}`, token: "s3cret", status: 401},
		{name: "from another site", path: "/api/v1/approvals/act-h/approve", body: `{}`, site: "cross-site", status: 403},
		{name: "an unknown field", path: "/api/v1/approvals/act-h/approve", body: `{"by":"x","force":true}`, status: 400},
		{name: "two JSON values", path: "/api/v1/approvals/act-h/approve", body: `{} {}`, status: 400},
		{name: "broken JSON", path: "/api/v1/approvals/act-h/approve", body: `{"by":`, status: 400},
		{name: "a body too large", path: "/api/v1/approvals/act-h/approve", body: `{"reason":"` + strings.Repeat("x", maxBody) + `"}`, status: 413},
		{name: "engage the kill switch", path: "/api/v1/killswitch", body: `{"engaged":true,"reason":"incident 7","by":"dave"}`, status: 200,
			check: func(t *testing.T) {
				if ks := killSwitch(); !ks.Engaged || ks.By != "dave" || ks.Reason != "incident 7" {
					t.Errorf("kill switch %+v", ks)
				}
			}},
		{name: "release the kill switch", path: "/api/v1/killswitch", body: `{"engaged":false}`, status: 200,
			check: func(t *testing.T) {
				if ks := killSwitch(); ks.Engaged || ks.By != DefaultBy {
					t.Errorf("kill switch %+v", ks)
				}
			}},
		{name: "the kill switch without engaged", path: "/api/v1/killswitch", body: `{"reason":"?"}`, status: 400},
		{name: "the kill switch of a bad subject", path: "/api/v1/killswitch", body: `{"engaged":true,"subject":"a.>"}`, status: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup()
			}
			req, err := http.NewRequest(http.MethodPost, tp.srv.URL+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", cmpOrDefault(tt.contentType, json))
			if tt.header != "-" {
				req.Header.Set(ControlHeader, "1")
			}
			if tt.token != "-" {
				req.Header.Set("Authorization", "Bearer "+cmpOrDefault(tt.token, testToken))
			}
			if tt.site != "" {
				req.Header.Set("Sec-Fetch-Site", tt.site)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if tt.status != http.StatusOK {
				wantProblem(t, resp, tt.status)
			} else if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if tt.status == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without WWW-Authenticate: %v", resp.Header)
			}
			if tt.check != nil {
				tt.check(t)
			}
		})
	}
}

// TestControlsWithoutToken: with no token configured, the header and JSON
// are still required, and nothing else.
func TestControlsWithoutToken(t *testing.T) {
	tp := newTestPage(t, Config{})
	putApproval(t, tp, "act-1", time.Now())
	req, _ := http.NewRequest(http.MethodPost, tp.srv.URL+"/api/v1/approvals/act-1/approve", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(ControlHeader, "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d", resp.StatusCode)
	}
}

// stored reports whether an action event with id is stored.
func stored(t *testing.T, b *bus.Bus, id string) bool {
	t.Helper()
	found := false
	err := b.ReadEvents(context.Background(), schemas.StreamActions, time.Time{}, func(_ string, e event.Event, err error) error {
		found = found || (err == nil && e.ID() == id)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
