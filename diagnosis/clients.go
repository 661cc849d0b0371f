package diagnosis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// maxBody bounds what one read takes from a subject or Prometheus; the
// evidence cap then cuts it further.
const maxBody = 4 << 20

// HTTPGetter reads a subject's HTTP API with GET only, trying each base URL
// in turn until one answers. It is safe for concurrent use.
type HTTPGetter struct {
	// URLs are base URLs of equivalent endpoints (any node, any PD member).
	URLs []string
	// Token, when set, is sent as a bearer token.
	Token string
	// Client is used for every request (nil: http.DefaultClient); the
	// caller's ctx bounds each one.
	Client *http.Client

	next atomic.Uint64
}

var _ Getter = (*HTTPGetter)(nil)

// Get fetches path. A non-2xx answer is an error carrying its status and the
// start of its body.
func (h *HTTPGetter) Get(ctx context.Context, path string) ([]byte, string, error) {
	if len(h.URLs) == 0 {
		return nil, "GET " + path, errors.New("no endpoint")
	}
	hc := h.Client
	if hc == nil {
		hc = http.DefaultClient
	}
	start := int(h.next.Load() % uint64(len(h.URLs)))
	var errs []error
	for i := range h.URLs {
		base := strings.TrimRight(h.URLs[(start+i)%len(h.URLs)], "/")
		u := base + path
		body, err := get(ctx, hc, u, h.Token)
		if err == nil {
			h.next.Store(uint64((start + i) % len(h.URLs)))
			return body, "GET " + u, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, "GET " + path, errors.Join(errs...)
}

func get(ctx context.Context, hc *http.Client, u, token string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("GET %s: %s: %.200s", u, resp.Status, body)
	}
	return body, nil
}

// PrometheusClient runs instant queries on one Prometheus server.
type PrometheusClient struct {
	URL    string
	Client *http.Client
}

var _ Querier = (*PrometheusClient)(nil)

// Query runs query at the given time and returns the result (its "result"
// field: a vector, scalar, matrix or string).
func (p *PrometheusClient) Query(ctx context.Context, query string, at time.Time) (json.RawMessage, string, error) {
	source := "prometheus " + p.URL + ": " + query
	hc := p.Client
	if hc == nil {
		hc = http.DefaultClient
	}
	v := url.Values{"query": {query}}
	if !at.IsZero() {
		v.Set("time", strconv.FormatFloat(float64(at.UnixNano())/1e9, 'f', 3, 64))
	}
	body, err := get(ctx, hc, strings.TrimRight(p.URL, "/")+"/api/v1/query?"+v.Encode(), "")
	if err != nil {
		return nil, source, err
	}
	var resp struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, source, fmt.Errorf("decode answer: %w", err)
	}
	if resp.Status != "success" {
		return nil, source, fmt.Errorf("query failed: %s", resp.Error)
	}
	return resp.Data.Result, source, nil
}
