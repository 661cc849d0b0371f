package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/operator-dev/operator/internal/bus/bustest"
	"github.com/operator-dev/operator/statuspage"
)

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// getStatus polls the page's status until it answers, and decodes it.
func getStatus(t *testing.T, base string, ok func(statuspage.Status) bool) statuspage.Status {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var st statuspage.Status
		resp, err := http.Get(base + "/api/v1/status")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && json.Unmarshal(body, &st) == nil && ok(st) {
				return st
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no status from %s: %v", base, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runCmd runs the command tree in the background; stop cancels it and
// returns its error.
func runCmd(t *testing.T, out *syncBuffer, args ...string) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		root := newRootCmd()
		root.SetOut(out)
		root.SetErr(out)
		root.SetArgs(args)
		done <- root.ExecuteContext(ctx)
	}()
	return func() error {
		cancel()
		return <-done
	}
}

func TestUIServesThePage(t *testing.T) {
	b := bustest.New(t, bustest.WithListener)
	addr := freeAddr(t)
	var out syncBuffer
	stop := runCmd(t, &out, "ui", "--nats", b.ClientURL(), "--listen", addr, "--token", "t")
	base := "http://" + addr
	st := getStatus(t, base, func(statuspage.Status) bool { return true })
	if !st.TokenRequired || st.Cursor == "" {
		t.Errorf("status %+v", st)
	}
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), `<script src="/ui/app.js" defer>`) {
		t.Errorf("the page: %s", page)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/killswitch", strings.NewReader(`{"engaged":true}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(statuspage.ControlHeader, "1")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a control without --token's token: %d", resp.StatusCode)
	}
	if err := stop(); err != nil {
		t.Fatalf("ui: %v", err)
	}
	if !strings.Contains(out.String(), "status page: http://"+addr+"/") {
		t.Errorf("ui printed:\n%s", out.String())
	}
}

func TestUpServesTheStatusPage(t *testing.T) {
	tests := []struct {
		name string
		// flags returns up's page flags and the address the page is on.
		flags func(metrics, ui string) ([]string, string)
	}{
		{"beside the metrics", func(metrics, _ string) ([]string, string) {
			return []string{"--metrics-listen", metrics}, metrics
		}},
		{"on its own address", func(metrics, ui string) ([]string, string) {
			return []string{"--metrics-listen", metrics, "--ui-listen", ui}, ui
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flags, pageAddr := tt.flags(freeAddr(t), freeAddr(t))
			var out syncBuffer
			stop := runCmd(t, &out, append([]string{"up", "--store", t.TempDir(), "--nats-listen", "", "--node-listen", "127.0.0.1:0",
				"--nodes", "2", "--quiet"}, flags...)...)
			st := getStatus(t, "http://"+pageAddr, func(st statuspage.Status) bool {
				return len(st.Instances) == 1 && len(st.Instances[0].Tables) > 0 && len(st.Instances[0].Tables[0].Rows) == 2
			})
			if in := st.Instances[0]; in.Subject != "ratelimiter" || in.Instance != "demo" || st.TokenRequired {
				t.Errorf("status %+v", st)
			}
			if err := stop(); err != nil {
				t.Fatalf("up: %v", err)
			}
			if !strings.Contains(out.String(), "status page:       http://"+pageAddr+"/") {
				t.Errorf("up did not print the page's address:\n%s", out.String())
			}
		})
	}
}
