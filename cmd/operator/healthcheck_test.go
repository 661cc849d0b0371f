package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHealthcheck(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /draining", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "draining", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("GET /moved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/readyz", http.StatusFound)
	})
	// Answers only once the client has given up, so the timeout decides.
	mux.HandleFunc("GET /stuck", func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	closed := httptest.NewServer(mux)
	closed.Close()

	tests := []struct {
		name    string
		args    []string
		wantErr string // empty: exit 0
	}{
		{name: "2xx is healthy", args: []string{srv.URL + "/readyz"}},
		{name: "a redirect to a 2xx is healthy", args: []string{srv.URL + "/moved"}},
		{name: "503 is unhealthy", args: []string{srv.URL + "/draining"}, wantErr: "503"},
		{name: "404 is unhealthy", args: []string{srv.URL + "/nope"}, wantErr: "404"},
		{name: "no answer is unhealthy", args: []string{closed.URL + "/readyz"}, wantErr: "GET " + closed.URL},
		{name: "a slow answer is unhealthy", args: []string{"--timeout", "50ms", srv.URL + "/stuck"}, wantErr: "deadline exceeded"},
		{name: "not an http URL", args: []string{"tcp://127.0.0.1:1"}, wantErr: "want http://"},
		{name: "no URL", args: nil, wantErr: "accepts 1 arg"},
		{name: "a timeout must be positive", args: []string{"--timeout", "0s", srv.URL + "/readyz"}, wantErr: "must be positive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			out, err := run(t, ctx, append([]string{"healthcheck"}, tc.args...)...)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("err = %v, want healthy", err)
				}
				if !strings.Contains(out, "200 OK") {
					t.Errorf("printed %q, want the 200 status line", out)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}
