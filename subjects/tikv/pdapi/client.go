package pdapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// Client calls PD's HTTP API. It is safe for concurrent use.
//
// Failover: every call starts with the URL that last answered. It moves on
// to the next URL when the attempt gets no response (connection refused,
// reset, the per-attempt timeout), a 502/503/504 (a follower with no leader
// answers 503 "redirect finds no leader"), or a 5xx whose body is not JSON
// (the redirector's and proxies' plain-text errors). A 500 with a JSON body
// is PD's own answer, which every member would repeat, so it is returned
// as is; so is every 4xx. When every URL fails, the last error is returned.
// The caller's ctx bounds the whole call; RequestTimeout bounds each attempt.
//
// Mutating calls are sent again to the next URL only under the same
// conditions. The mutations used here are idempotent in PD (adding an
// evict-leader scheduler for a store twice, deleting it twice, setting a
// state or a limit twice), except operator creation, whose repeat is refused
// with [ErrOperatorExists]; re-read the region to see whether the first one
// took effect.
type Client struct {
	bases   []string
	http    *http.Client
	timeout time.Duration
	maxBody int64
	current atomic.Int64 // index into bases of the URL that last answered
}

// New returns a Client for cfg, or the errors of cfg.Validate.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Client{
		http:    cfg.Client,
		timeout: cfg.RequestTimeout,
		maxBody: cfg.MaxResponseBytes,
	}
	for _, u := range cfg.URLs {
		base, _ := normalizeURL(u) // validated above
		c.bases = append(c.bases, base)
	}
	if c.http == nil {
		c.http = &http.Client{}
	}
	if c.timeout == 0 {
		c.timeout = DefaultRequestTimeout
	}
	if c.maxBody == 0 {
		c.maxBody = DefaultMaxResponseBytes
	}
	return c, nil
}

// CurrentURL returns the PD URL the next call tries first: the one that
// answered last.
func (c *Client) CurrentURL() string {
	return c.bases[c.current.Load()]
}

type idempotencyKeyCtx struct{}

// WithIdempotencyKey returns a ctx whose mutating calls (POST, DELETE) carry
// key in an Idempotency-Key header. PD ignores the header; it is there so
// PD's access logs and any proxy in front of PD can tie a request to the
// action that sent it. Reads never carry it.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, idempotencyKeyCtx{}, key)
}

func idempotencyKey(ctx context.Context) string {
	k, _ := ctx.Value(idempotencyKeyCtx{}).(string)
	return k
}

// call is one API request: method, path under APIPrefix, query and JSON
// body (nil for none).
type call struct {
	method string
	path   string
	query  url.Values
	body   any
}

// do runs the call with failover and decodes a 2xx body into out (nil
// discards it). It returns an [*Error] for a non-2xx answer or when no PD
// URL answered.
func (c *Client) do(ctx context.Context, cl call, out any) error {
	var payload []byte
	if cl.body != nil {
		var err error
		if payload, err = json.Marshal(cl.body); err != nil {
			return fmt.Errorf("pdapi: encode %s %s body: %w", cl.method, cl.path, err)
		}
	}
	start := int(c.current.Load())
	var last error
	for i := range c.bases {
		idx := (start + i) % len(c.bases)
		status, body, err := c.attempt(ctx, c.bases[idx], cl, payload)
		if err != nil {
			last = err
			if ctx.Err() != nil {
				return err // the caller gave up; don't try the others
			}
			if failover(status, body) {
				continue
			}
			c.current.Store(int64(idx))
			return err
		}
		c.current.Store(int64(idx))
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(body, out); err != nil {
			return fmt.Errorf("pdapi: decode %s %s%s%s response: %w", cl.method, c.bases[idx], APIPrefix, cl.path, err)
		}
		return nil
	}
	return last
}

// failover reports whether an attempt's failure should be retried on the
// next PD URL: no response at all, a gateway-style status, or a 5xx that is
// not PD's own JSON answer.
func failover(status int, body []byte) bool {
	switch {
	case status == 0:
		return true
	case status == http.StatusBadGateway, status == http.StatusServiceUnavailable, status == http.StatusGatewayTimeout:
		return true
	case status >= 500:
		return !json.Valid(bytes.TrimSpace(body))
	}
	return false
}

// attempt sends the call to one PD URL. On success it returns the status and
// body; otherwise an [*Error] (with the status, 0 if no response arrived)
// and the body read so far.
func (c *Client) attempt(ctx context.Context, base string, cl call, payload []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	u := base + APIPrefix + cl.path
	if len(cl.query) > 0 {
		u += "?" + cl.query.Encode()
	}
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, u, body)
	if err != nil {
		return 0, nil, &Error{Method: cl.method, URL: u, Err: err}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "operator-pdapi")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if cl.method != http.MethodGet {
		if key := idempotencyKey(ctx); key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
	}

	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, &Error{Method: cl.method, URL: u, Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
	if err == nil && int64(len(data)) > c.maxBody {
		err = fmt.Errorf("response larger than %d bytes", c.maxBody)
	}
	if err != nil {
		return 0, nil, &Error{Method: cl.method, URL: u, Err: fmt.Errorf("read response: %w", err)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, data, &Error{Method: cl.method, URL: u, Status: resp.StatusCode, Message: message(data)}
	}
	return resp.StatusCode, data, nil
}

// maxMessage caps the raw text kept from an error body that is not JSON.
const maxMessage = 512

// message extracts PD's message from an error body: a JSON string (PD's
// usual error body), the msg of an errcode object ({"code":..,"msg":..}),
// or the raw text (the redirector's text/plain errors). A body of null or
// nothing gives "".
func message(body []byte) string {
	b := bytes.TrimSpace(body)
	if len(b) == 0 || string(b) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(b, &s) == nil {
		return s
	}
	var obj struct {
		Msg     string `json:"msg"`
		Message string `json:"message"`
		Error   string `json:"error"`
	}
	if json.Unmarshal(b, &obj) == nil {
		for _, m := range []string{obj.Msg, obj.Message, obj.Error} {
			if m != "" {
				return m
			}
		}
	}
	text := strings.TrimSpace(string(b))
	if len(text) > maxMessage {
		text = text[:maxMessage] + "…"
	}
	return text
}
