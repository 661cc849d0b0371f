package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/operator-dev/operator/ratelimiter/api"
)

// maxResponseBytes caps the response bodies the client reads.
const maxResponseBytes = 32 << 20

// A Client talks to one rate limiter node. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	hc    *http.Client
	token string
}

// New returns a client for the node at baseURL (for example
// "http://127.0.0.1:8080"). A nil hc means http.DefaultClient; give one with
// a Timeout in production.
func New(baseURL string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("rate limiter url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("rate limiter url %q: want http(s)://host[:port]", baseURL)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: u, hc: hc}, nil
}

// WithToken returns a copy of c that sends "Authorization: Bearer token" on
// every request.
func (c *Client) WithToken(token string) *Client {
	cp := *c
	cp.token = token
	return &cp
}

// BaseURL returns the node's base URL.
func (c *Client) BaseURL() string { return c.base.String() }

type idempotencyKey struct{}

// WithIdempotencyKey returns a context whose requests carry the
// Idempotency-Key header, for example an action request id, so a retried
// mutation can be recognised.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, idempotencyKey{}, key)
}

// Sentinel errors matched by errors.Is against an [*Error].
var (
	ErrBadRequest   = errors.New("bad request")
	ErrUnauthorized = errors.New("unauthorized")
	ErrNotFound     = errors.New("not found")
	ErrUnavailable  = errors.New("unavailable")
)

// Error is a non-success answer from the node.
type Error struct {
	Method string
	URL    string
	// StatusCode is the HTTP status.
	StatusCode int
	// Problem is the decoded problem document; for a body that was not one,
	// Detail holds the start of the body.
	Problem api.Problem
	// RetryAfter is the Retry-After the node sent, or 0.
	RetryAfter time.Duration
}

// Error describes the request and the node's detail.
func (e *Error) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.StatusCode, e.Problem.Detail)
}

// Is matches the sentinel errors by status code.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrBadRequest:
		return e.StatusCode == http.StatusBadRequest
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrUnavailable:
		return e.StatusCode == http.StatusServiceUnavailable
	}
	return false
}

// Transient reports whether repeating the request later may succeed: 429
// and 5xx answers are transient, other 4xx answers are not.
func (e *Error) Transient() bool {
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}

// IsTransient reports whether err is worth retrying: a transient [*Error] or a
// failure to reach the node at all. Context cancellation is not transient.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Transient()
	}
	return true
}

// do sends a request and decodes a JSON answer into out. Statuses in ok are
// successes; any other status becomes an *Error.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any, ok ...int) (int, error) {
	u := *c.base
	u.RawPath = c.base.EscapedPath() + path
	u.Path, _ = url.PathUnescape(u.RawPath)
	u.RawQuery = query.Encode()
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return 0, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if k, _ := ctx.Value(idempotencyKey{}).(string); k != "" && method != http.MethodGet {
		req.Header.Set("Idempotency-Key", k)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, u.Redacted(), err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: read response: %w", method, u.Redacted(), err)
	}
	if len(ok) == 0 {
		ok = []int{http.StatusOK}
	}
	for _, s := range ok {
		if resp.StatusCode != s {
			continue
		}
		if out != nil {
			if err := json.Unmarshal(data, out); err != nil {
				return resp.StatusCode, fmt.Errorf("%s %s: decode %d response: %w", method, u.Redacted(), resp.StatusCode, err)
			}
		}
		return resp.StatusCode, nil
	}
	e := &Error{Method: method, URL: u.Redacted(), StatusCode: resp.StatusCode}
	if err := json.Unmarshal(data, &e.Problem); err != nil || e.Problem.Detail == "" {
		e.Problem = api.Problem{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode), Detail: strings.TrimSpace(string(data[:min(len(data), 512)]))}
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return resp.StatusCode, e
}

func seg(s string) string { return url.PathEscape(s) }

// Check asks for cost units of key's quota. Both an allowed (200) and a denied
// or blocked (429) decision return a nil error; check Decision.Allowed.
func (c *Client) Check(ctx context.Context, key string, cost int64) (api.Decision, error) {
	var d api.Decision
	_, err := c.do(ctx, http.MethodPost, "/v1/check", nil, api.CheckRequest{Key: key, Cost: cost}, &d,
		http.StatusOK, http.StatusTooManyRequests)
	return d, err
}

// CheckBatch decides several checks in one request (POST /v1/check:batch),
// each as Check would, sharing the request's HTTP work and the node's
// Redis round trips: the fastest path for a caller that has several
// checks at hand. At most api.MaxBatch checks; the decisions come back in
// order.
func (c *Client) CheckBatch(ctx context.Context, checks []api.CheckRequest) ([]api.Decision, error) {
	if len(checks) == 0 {
		return nil, nil
	}
	if len(checks) > api.MaxBatch {
		return nil, fmt.Errorf("%d checks in one batch, more than the maximum of %d", len(checks), api.MaxBatch)
	}
	var out api.BatchDecisions
	if _, err := c.do(ctx, http.MethodPost, "/v1/check:batch", nil, api.CheckBatch{Checks: checks}, &out); err != nil {
		return nil, err
	}
	if len(out.Decisions) != len(checks) {
		return nil, fmt.Errorf("batch of %d checks answered with %d decisions", len(checks), len(out.Decisions))
	}
	return out.Decisions, nil
}

// Healthz reports whether the node process answers.
func (c *Client) Healthz(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodGet, "/healthz", nil, nil, nil)
	return err
}

// Readyz reports whether the node is ready: Redis reachable, not draining.
func (c *Client) Readyz(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodGet, "/readyz", nil, nil, nil)
	return err
}

// Status returns the node's own view of itself.
func (c *Client) Status(ctx context.Context) (api.Status, error) {
	var s api.Status
	_, err := c.do(ctx, http.MethodGet, "/api/v1/status", nil, nil, &s)
	return s, err
}

// Nodes lists the node registry.
func (c *Client) Nodes(ctx context.Context) (api.NodeList, error) {
	var l api.NodeList
	_, err := c.do(ctx, http.MethodGet, "/api/v1/nodes", nil, nil, &l)
	return l, err
}

// Drain asks node id to drain.
func (c *Client) Drain(ctx context.Context, id string) (api.NodeAction, error) {
	var a api.NodeAction
	_, err := c.do(ctx, http.MethodPost, "/api/v1/nodes/"+seg(id)+"/drain", nil, nil, &a)
	return a, err
}

// Undrain asks node id to stop draining.
func (c *Client) Undrain(ctx context.Context, id string) (api.NodeAction, error) {
	var a api.NodeAction
	_, err := c.do(ctx, http.MethodPost, "/api/v1/nodes/"+seg(id)+"/undrain", nil, nil, &a)
	return a, err
}

// CounterQuery selects counters to list. Zero fields are left to the node's
// defaults.
type CounterQuery struct {
	Prefix string
	Limit  int
	// Cursor resumes a truncated listing.
	Cursor string
}

// Counters lists counters by key prefix.
func (c *Client) Counters(ctx context.Context, q CounterQuery) (api.CounterList, error) {
	v := url.Values{}
	if q.Prefix != "" {
		v.Set("prefix", q.Prefix)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	var l api.CounterList
	_, err := c.do(ctx, http.MethodGet, "/api/v1/counters", v, nil, &l)
	return l, err
}

// Counter returns key's counter as the node computes it.
func (c *Client) Counter(ctx context.Context, key string) (api.Counter, error) {
	var ct api.Counter
	_, err := c.do(ctx, http.MethodGet, "/api/v1/counters/"+seg(key), nil, nil, &ct)
	return ct, err
}

// ResetCounter deletes key's counters.
func (c *Client) ResetCounter(ctx context.Context, key string) (api.CounterReset, error) {
	var r api.CounterReset
	_, err := c.do(ctx, http.MethodPost, "/api/v1/counters/"+seg(key)+"/reset", nil, nil, &r)
	return r, err
}

// Limits returns the limits the node enforces.
func (c *Client) Limits(ctx context.Context) (api.LimitList, error) {
	var l api.LimitList
	_, err := c.do(ctx, http.MethodGet, "/api/v1/limits", nil, nil, &l)
	return l, err
}

// Limit returns the limit configured for pattern.
func (c *Client) Limit(ctx context.Context, pattern string) (api.Limit, error) {
	var l api.Limit
	_, err := c.do(ctx, http.MethodGet, "/api/v1/limits/"+seg(pattern), nil, nil, &l)
	return l, err
}

// PutLimit stores the limit for pattern (an exact key or "prefix*").
func (c *Client) PutLimit(ctx context.Context, pattern string, spec api.LimitSpec) (api.Limit, error) {
	var l api.Limit
	_, err := c.do(ctx, http.MethodPut, "/api/v1/limits/"+seg(pattern), nil, spec, &l)
	return l, err
}

// DeleteLimit removes the limit for pattern.
func (c *Client) DeleteLimit(ctx context.Context, pattern string) (api.LimitDeleted, error) {
	var d api.LimitDeleted
	_, err := c.do(ctx, http.MethodDelete, "/api/v1/limits/"+seg(pattern), nil, nil, &d)
	return d, err
}

// Blocks lists the active blocks.
func (c *Client) Blocks(ctx context.Context) (api.BlockList, error) {
	var l api.BlockList
	_, err := c.do(ctx, http.MethodGet, "/api/v1/blocks", nil, nil, &l)
	return l, err
}

// Block returns key's active block.
func (c *Client) Block(ctx context.Context, key string) (api.Block, error) {
	var b api.Block
	_, err := c.do(ctx, http.MethodGet, "/api/v1/blocks/"+seg(key), nil, nil, &b)
	return b, err
}

// PutBlock blocks key for spec.TTLMS milliseconds.
func (c *Client) PutBlock(ctx context.Context, key string, spec api.BlockSpec) (api.Block, error) {
	var b api.Block
	_, err := c.do(ctx, http.MethodPut, "/api/v1/blocks/"+seg(key), nil, spec, &b)
	return b, err
}

// DeleteBlock removes key's block.
func (c *Client) DeleteBlock(ctx context.Context, key string) (api.BlockDeleted, error) {
	var d api.BlockDeleted
	_, err := c.do(ctx, http.MethodDelete, "/api/v1/blocks/"+seg(key), nil, nil, &d)
	return d, err
}

// HotKeys returns the node's busiest keys over the last minute; limit <= 0
// leaves the count to the node.
func (c *Client) HotKeys(ctx context.Context, limit int) (api.HotKeys, error) {
	v := url.Values{}
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	var h api.HotKeys
	_, err := c.do(ctx, http.MethodGet, "/api/v1/hotkeys", v, nil, &h)
	return h, err
}

// Chaos returns the node's fault injection settings.
func (c *Client) Chaos(ctx context.Context) (api.Chaos, error) {
	var ch api.Chaos
	_, err := c.do(ctx, http.MethodGet, "/api/v1/chaos", nil, nil, &ch)
	return ch, err
}

// SetChaos replaces the node's fault injection settings.
func (c *Client) SetChaos(ctx context.Context, ch api.Chaos) (api.Chaos, error) {
	var out api.Chaos
	_, err := c.do(ctx, http.MethodPost, "/api/v1/chaos", nil, ch, &out)
	return out, err
}

// ClearChaos removes the node's fault injection settings.
func (c *Client) ClearChaos(ctx context.Context) (api.Chaos, error) {
	var out api.Chaos
	_, err := c.do(ctx, http.MethodDelete, "/api/v1/chaos", nil, nil, &out)
	return out, err
}
