package pdapi_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/operator-dev/operator/subjects/tikv/pdapi"
)

// fixture is a canned PD answer read from testdata.
type fixture struct {
	status      int
	file        string // under testdata
	contentType string // default: PD's application/json
}

// seen is one request the fixture server received.
type seen struct {
	Method         string
	Path           string
	Query          string
	Body           string
	IdempotencyKey string
}

// fixtureServer answers PD API requests from testdata files and records
// what it was sent.
type fixtureServer struct {
	t      *testing.T
	routes map[string]fixture // "METHOD /path" or "METHOD /path?query"

	mu   sync.Mutex
	seen []seen
}

// newFixtureServer starts an httptest server serving routes (paths under
// /pd/api/v1) and returns it with a client pointed at it.
func newFixtureServer(t *testing.T, routes map[string]fixture) (*fixtureServer, *pdapi.Client) {
	t.Helper()
	fs := &fixtureServer{t: t, routes: routes}
	srv := httptest.NewServer(fs)
	t.Cleanup(srv.Close)
	return fs, newClient(t, srv.URL)
}

func newClient(t *testing.T, urls ...string) *pdapi.Client {
	t.Helper()
	c, err := pdapi.New(pdapi.Config{URLs: urls, RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (fs *fixtureServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	fs.mu.Lock()
	fs.seen = append(fs.seen, seen{
		Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Body: string(body),
		IdempotencyKey: r.Header.Get("Idempotency-Key"),
	})
	fs.mu.Unlock()

	const prefix = pdapi.APIPrefix
	if len(r.URL.Path) < len(prefix) || r.URL.Path[:len(prefix)] != prefix {
		http.NotFound(w, r)
		return
	}
	key := r.Method + " " + r.URL.Path[len(prefix):]
	f, ok := fs.routes[key+"?"+r.URL.RawQuery]
	if !ok {
		f, ok = fs.routes[key]
	}
	if !ok {
		http.NotFound(w, r) // gorilla/mux answers unknown routes the same way
		return
	}
	data := readFixture(fs.t, f.file)
	ct := f.contentType
	if ct == "" {
		ct = "application/json; charset=UTF-8"
	}
	w.Header().Set("Content-Type", ct)
	status := f.status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// requests returns what the server has received so far.
func (fs *fixtureServer) requests() []seen {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]seen(nil), fs.seen...)
}

// last returns the last request received.
func (fs *fixtureServer) last() seen {
	fs.t.Helper()
	reqs := fs.requests()
	if len(reqs) == 0 {
		fs.t.Fatal("the server received no request")
	}
	return reqs[len(reqs)-1]
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	return data
}

// testCtx returns a context that ends with the test.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
