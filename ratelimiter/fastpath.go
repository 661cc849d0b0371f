package ratelimiter

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/operator-dev/operator/ratelimiter/api"
)

// The check endpoint's hot path decodes and encodes by hand the one body
// shape nearly every caller sends, and hands anything else to the general
// decoder, so refusals and their messages stay exactly those of
// decodeCheckRequest. Buffers are pooled: a decision allocates its key and
// little else.

// bodyBufs pools request and response buffers.
var bodyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// readBody reads the whole body, up to api.MaxBodyBytes+1 bytes, into a
// pooled buffer; the caller puts it back.
func readBody(r io.Reader) (*[]byte, error) {
	bp := bodyBufs.Get().(*[]byte)
	b := (*bp)[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			*bp = b
			return bp, err
		}
		if len(b) > api.MaxBodyBytes {
			break
		}
	}
	*bp = b
	return bp, nil
}

// parseCheckFast reads {"key": "...", "cost": N} in either order, with
// optional whitespace and an optional cost, where the key has no escapes
// and N is a plain positive integer. ok is false for anything else.
func parseCheckFast(b []byte) (key []byte, cost int64, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, 0, false
	}
	cost = 1
	var haveKey, haveCost bool
	i = skipSpace(b, i+1)
	for {
		if i >= len(b) || b[i] != '"' {
			return nil, 0, false
		}
		var name []byte
		if name, i, ok = plainString(b, i); !ok {
			return nil, 0, false
		}
		if i = skipSpace(b, i); i >= len(b) || b[i] != ':' {
			return nil, 0, false
		}
		i = skipSpace(b, i+1)
		switch {
		case string(name) == "key" && !haveKey:
			if i >= len(b) || b[i] != '"' {
				return nil, 0, false
			}
			if key, i, ok = plainString(b, i); !ok {
				return nil, 0, false
			}
			haveKey = true
		case string(name) == "cost" && !haveCost:
			start := i
			for i < len(b) && b[i] >= '0' && b[i] <= '9' {
				i++
			}
			n, okN := parseInt(b[start:i])
			if !okN || n < 1 || (i-start > 1 && b[start] == '0') {
				return nil, 0, false
			}
			cost, haveCost = n, true
		default:
			return nil, 0, false // unknown or repeated field: the general decoder says so
		}
		i = skipSpace(b, i)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
			continue
		}
		if i >= len(b) || b[i] != '}' || !haveKey {
			return nil, 0, false
		}
		if skipSpace(b, i+1) != len(b) {
			return nil, 0, false
		}
		return key, cost, true
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// plainString reads the JSON string at b[i] (a quote) when it holds no
// escape and no control character; next is the index after its closing
// quote.
func plainString(b []byte, i int) (s []byte, next int, ok bool) {
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// decodeCheck decodes a check body: the hand-written path for the common
// shape (validated the same way), else the general decoder.
func decodeCheck(b []byte) (api.CheckRequest, error) {
	if key, cost, ok := parseCheckFast(b); ok && utf8.Valid(key) {
		k := string(key)
		if err := ValidateKey(k); err != nil {
			return api.CheckRequest{}, err
		}
		return api.CheckRequest{Key: k, Cost: cost}, nil
	}
	return decodeCheckRequest(bytes.NewReader(b))
}

// Header values that never change, shared read-only by every response.
var (
	headerJSON    = []string{"application/json"}
	headerNoStore = []string{"no-store"}
)

// policyHeaders remembers the RateLimit-Policy field of each limit a node
// applies: the same few values on every decision, built once.
type policyHeaders struct{ m sync.Map } // policyKey -> []string, read-only

type policyKey struct{ limit, windowS int64 }

func (p *policyHeaders) get(lim Limit) []string {
	k := policyKey{lim.Limit, ceilSeconds(lim.Window)}
	if v, ok := p.m.Load(k); ok {
		return v.([]string)
	}
	b := append([]byte(policyName), ";q="...)
	b = strconv.AppendInt(b, k.limit, 10)
	b = append(b, ";w="...)
	b = strconv.AppendInt(b, k.windowS, 10)
	v, _ := p.m.LoadOrStore(k, []string{string(b)})
	return v.([]string)
}

// writeDecision writes a decision's headers and body as the general
// writeJSON and setRateLimitHeaders would, with no reflection or
// formatting.
func writeDecision(w http.ResponseWriter, d Decision, node string, policies *policyHeaders) {
	hdr := w.Header()
	hdr["Content-Type"] = headerJSON
	hdr["Cache-Control"] = headerNoStore
	bp := bodyBufs.Get().(*[]byte)
	defer bodyBufs.Put(bp)
	if !d.Degraded {
		hdr["Ratelimit-Policy"] = policies.get(d.Limit)
		b := (*bp)[:0]
		t := ceilSeconds(d.ResetAfter)
		if !d.Allowed {
			t = max(ceilSeconds(d.RetryAfter), 1)
			hdr["Retry-After"] = []string{strconv.FormatInt(t, 10)}
		}
		b = append(b[:0], policyName...)
		b = append(b, ";r="...)
		b = strconv.AppendInt(b, d.Remaining, 10)
		b = append(b, ";t="...)
		b = strconv.AppendInt(b, t, 10)
		hdr["Ratelimit"] = []string{string(b)}
	}
	status := http.StatusOK
	if !d.Allowed {
		status = http.StatusTooManyRequests
	}
	w.WriteHeader(status)
	b := appendDecisionJSON((*bp)[:0], d.api(node))
	*bp = b
	_, _ = w.Write(append(b, '\n'))
}

// appendDecisionJSON encodes d exactly as encoding/json does.
func appendDecisionJSON(b []byte, d api.Decision) []byte {
	b = append(b, `{"allowed":`...)
	b = strconv.AppendBool(b, d.Allowed)
	b = append(b, `,"key":`...)
	b = appendJSONString(b, d.Key)
	b = append(b, `,"limit":`...)
	b = strconv.AppendInt(b, d.Limit, 10)
	b = append(b, `,"remaining":`...)
	b = strconv.AppendInt(b, d.Remaining, 10)
	b = append(b, `,"window_ms":`...)
	b = strconv.AppendInt(b, d.WindowMS, 10)
	b = append(b, `,"algorithm":`...)
	b = appendJSONString(b, d.Algorithm)
	b = append(b, `,"reset_after_ms":`...)
	b = strconv.AppendInt(b, d.ResetAfterMS, 10)
	b = append(b, `,"retry_after_ms":`...)
	b = strconv.AppendInt(b, d.RetryAfterMS, 10)
	if d.Blocked {
		b = append(b, `,"blocked":true`...)
	}
	if d.Degraded {
		b = append(b, `,"degraded":true`...)
	}
	if d.Node != "" {
		b = append(b, `,"node":`...)
		b = appendJSONString(b, d.Node)
	}
	return append(b, '}')
}

// appendJSONString quotes s as encoding/json does (HTML-safe); a string
// needing more than plain ASCII goes through encoding/json itself.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// decodeBatch decodes a batch body: {"checks": [check, ...]} with 1 to
// api.MaxBatch checks, each checked as decodeCheck does. Refusals name the
// check's index.
func decodeBatch(b []byte) ([]api.CheckRequest, error) {
	var raw struct {
		Checks []json.RawMessage `json:"checks"`
	}
	if err := decodeJSON(bytes.NewReader(b), &raw); err != nil {
		return nil, err
	}
	switch {
	case raw.Checks == nil:
		return nil, invalidf("field \"checks\" is required: a list of {\"key\": ..., \"cost\": ...}")
	case len(raw.Checks) == 0:
		return nil, invalidf("field \"checks\" is empty")
	case len(raw.Checks) > api.MaxBatch:
		return nil, invalidf("%d checks in one batch, more than the maximum of %d", len(raw.Checks), api.MaxBatch)
	}
	out := make([]api.CheckRequest, len(raw.Checks))
	for i, c := range raw.Checks {
		req, err := decodeCheck(c)
		if err != nil {
			return nil, invalidf("check %d: %s", i, strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
		}
		out[i] = req
	}
	return out, nil
}
