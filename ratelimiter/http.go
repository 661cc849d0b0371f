package ratelimiter

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/operator-dev/operator/ratelimiter/api"
)

// HandlerOptions configures [NewHandler].
type HandlerOptions struct {
	// Token, when set, is required as "Authorization: Bearer <token>" on
	// every mutating management request (POST, PUT, DELETE under /api/v1).
	Token string
	// Gatherer serves /metrics; nil leaves /metrics out.
	Gatherer prometheus.Gatherer
}

// Defaults of list endpoints.
const (
	DefaultHotKeys = 20
	MaxHotKeys     = 1000
)

// NewHandler returns the node's HTTP API:
//
//	POST /v1/check                     decide; 200 allowed, 429 denied or blocked
//	POST /v1/check:batch               decide up to api.MaxBatch checks; 200 with one decision each
//	GET  /healthz                      the process is up
//	GET  /readyz                       Redis reachable, limits loaded, not draining
//	GET  /metrics                      Prometheus metrics (with a Gatherer)
//	GET  /api/v1/status                this node's own view
//	GET  /api/v1/nodes                 the node registry
//	POST /api/v1/nodes/{id}/drain      ask a node to drain
//	POST /api/v1/nodes/{id}/undrain    ask a node to stop draining
//	GET  /api/v1/counters              counters by key prefix (?prefix=&limit=&cursor=)
//	GET  /api/v1/counters/{key}        one counter as this node computes it
//	POST /api/v1/counters/{key}/reset  delete a key's counters
//	GET  /api/v1/limits                the limits this node enforces
//	GET|PUT|DELETE /api/v1/limits/{pattern}
//	GET  /api/v1/blocks                active blocks
//	GET|PUT|DELETE /api/v1/blocks/{key}
//	GET  /api/v1/hotkeys               this node's busiest keys (?limit=)
//	GET|POST|DELETE /api/v1/chaos      fault injection, with Config.EnableChaos
//
// Path parameters are path-escaped (a key "a/b" is "a%2Fb"). Every error is an
// application/problem+json document; request bodies are capped at 64 KiB.
func NewHandler(l *Limiter, opts HandlerOptions) http.Handler {
	h := &handler{l: l}
	mux := http.NewServeMux()
	token := requireToken(opts.Token)
	// auth guards and logs every mutating management request.
	auth := func(next http.Handler) http.Handler { return h.audit(token(next)) }

	mux.Handle("POST /v1/check", h.observeCheck(http.HandlerFunc(h.check)))
	mux.HandleFunc("POST /v1/check:batch", h.checkBatch)
	mux.HandleFunc("GET /healthz", h.healthz)
	mux.HandleFunc("GET /readyz", h.readyz)
	if opts.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("GET /api/v1/status", h.status)
	mux.HandleFunc("GET /api/v1/nodes", h.nodes)
	mux.Handle("POST /api/v1/nodes/{id}/drain", auth(h.drain(true)))
	mux.Handle("POST /api/v1/nodes/{id}/undrain", auth(h.drain(false)))
	mux.HandleFunc("GET /api/v1/counters", h.listCounters)
	mux.HandleFunc("GET /api/v1/counters/{key}", h.counter)
	mux.Handle("POST /api/v1/counters/{key}/reset", auth(http.HandlerFunc(h.resetCounter)))
	mux.HandleFunc("GET /api/v1/limits", h.listLimits)
	mux.HandleFunc("GET /api/v1/limits/{pattern}", h.getLimit)
	mux.Handle("PUT /api/v1/limits/{pattern}", auth(http.HandlerFunc(h.putLimit)))
	mux.Handle("DELETE /api/v1/limits/{pattern}", auth(http.HandlerFunc(h.deleteLimit)))
	mux.HandleFunc("GET /api/v1/blocks", h.listBlocks)
	mux.HandleFunc("GET /api/v1/blocks/{key}", h.getBlock)
	mux.Handle("PUT /api/v1/blocks/{key}", auth(http.HandlerFunc(h.putBlock)))
	mux.Handle("DELETE /api/v1/blocks/{key}", auth(http.HandlerFunc(h.deleteBlock)))
	mux.HandleFunc("GET /api/v1/hotkeys", h.hotkeys)
	mux.HandleFunc("GET /api/v1/chaos", h.getChaos)
	mux.Handle("POST /api/v1/chaos", auth(http.HandlerFunc(h.setChaos)))
	mux.Handle("DELETE /api/v1/chaos", auth(http.HandlerFunc(h.clearChaos)))

	mux.HandleFunc("/", notRouted(mux))
	return limitBody(mux)
}

type handler struct {
	l        *Limiter
	policies policyHeaders
}

// limitBody caps every request body at api.MaxBodyBytes.
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, api.MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

// requireToken returns middleware that refuses requests without the bearer
// token; with an empty token it lets everything through.
func requireToken(token string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if token == "" {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="ratelimiter"`)
				writeProblem(w, r, http.StatusUnauthorized, api.CodeUnauthorized,
					"this endpoint requires \"Authorization: Bearer <token>\" with the node's token")
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// audit logs a mutating management request once it is answered, with its
// Idempotency-Key, so operators can trace what changed and who retried.
func (h *handler) audit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		h.l.log.Info("management request", "method", r.Method, "path", r.URL.Path, "status", sw.status,
			"remote", r.RemoteAddr, "idempotency_key", r.Header.Get("Idempotency-Key"))
	})
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// observeCheck records the check handler's duration.
func (h *handler) observeCheck(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		next.ServeHTTP(w, r)
		h.l.metrics.checkDuration.Observe(time.Since(start).Seconds())
	})
}

// notRouted answers requests no route matches with a problem document: 405
// with Allow when the path exists for other methods, else 404. It is
// registered as the catch-all "/", so routed requests go through the mux
// once.
func notRouted(mux *http.ServeMux) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var allowed []string
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/" {
				allowed = append(allowed, m)
			}
		}
		if len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			writeProblem(w, r, http.StatusMethodNotAllowed, api.CodeNotFound,
				fmt.Sprintf("method %s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, strings.Join(allowed, ", ")))
			return
		}
		writeProblem(w, r, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("no endpoint %s %s", r.Method, r.URL.Path))
	}
}

// writeProblem writes every error response of the API.
func writeProblem(w http.ResponseWriter, r *http.Request, status int, code, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(api.Problem{
		Type:     "about:blank",
		Title:    http.StatusText(status),
		Status:   status,
		Detail:   detail,
		Code:     code,
		Instance: r.URL.Path,
	})
}

// writeError maps an error from the Limiter to a problem document.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrInvalid):
		writeProblem(w, r, http.StatusBadRequest, api.CodeBadRequest, strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
	case errors.Is(err, ErrNotFound):
		writeProblem(w, r, http.StatusNotFound, api.CodeNotFound, err.Error())
	case errors.Is(err, ErrChaosDisabled):
		writeProblem(w, r, http.StatusNotFound, api.CodeChaosDisabled, "chaos hooks are disabled; start the node with --enable-chaos")
	case errors.Is(err, ErrDraining):
		writeProblem(w, r, http.StatusServiceUnavailable, api.CodeDraining, "node is draining; send requests to another node")
	case errors.Is(err, ErrUnavailable):
		w.Header().Set("Retry-After", "1")
		writeProblem(w, r, http.StatusServiceUnavailable, api.CodeRedisUnavailable, err.Error())
	default:
		writeProblem(w, r, http.StatusInternalServerError, api.CodeInternal, err.Error())
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (h *handler) check(w http.ResponseWriter, r *http.Request) {
	if h.l.Draining() {
		w.Header().Set("Retry-After", "1")
		writeProblem(w, r, http.StatusServiceUnavailable, api.CodeDraining,
			fmt.Sprintf("node %s is draining; send checks to another node", h.l.NodeID()))
		return
	}
	bp, err := readBody(r.Body)
	defer bodyBufs.Put(bp)
	var req api.CheckRequest
	if err != nil || len(*bp) > api.MaxBodyBytes {
		// Let the general decoder tell what is wrong, in its words.
		req, err = decodeCheckRequest(io.MultiReader(bytes.NewReader(*bp), r.Body))
	} else {
		req, err = decodeCheck(*bp)
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	d, err := h.l.Check(r.Context(), req.Key, req.Cost)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeDecision(w, d, h.l.NodeID(), &h.policies)
}

// checkBatch decides several checks in one request: the HTTP work of one
// request, the Redis round trips shared. The answer is 200 with one
// decision per check (allowed or not is in each); a malformed batch, or a
// check /v1/check would refuse, refuses the whole batch with its index.
func (h *handler) checkBatch(w http.ResponseWriter, r *http.Request) {
	if h.l.Draining() {
		w.Header().Set("Retry-After", "1")
		writeProblem(w, r, http.StatusServiceUnavailable, api.CodeDraining,
			fmt.Sprintf("node %s is draining; send checks to another node", h.l.NodeID()))
		return
	}
	bp, err := readBody(r.Body)
	defer bodyBufs.Put(bp)
	var reqs []api.CheckRequest
	if err == nil && len(*bp) <= api.MaxBodyBytes {
		reqs, err = decodeBatch(*bp)
	} else {
		var b api.CheckBatch
		err = decodeJSON(io.MultiReader(bytes.NewReader(*bp), r.Body), &b)
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	ds, err := h.l.CheckBatch(r.Context(), reqs)
	if err != nil {
		writeError(w, r, err)
		return
	}
	hdr := w.Header()
	hdr["Content-Type"] = headerJSON
	hdr["Cache-Control"] = headerNoStore
	b := append((*bp)[:0], `{"decisions":[`...)
	node := h.l.NodeID()
	for i, d := range ds {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendDecisionJSON(b, d.api(node))
	}
	b = append(b, "]}\n"...)
	*bp = b
	_, _ = w.Write(b)
}

// api converts d to its wire form.
func (d Decision) api(node string) api.Decision {
	return api.Decision{
		Allowed:      d.Allowed,
		Key:          d.Key,
		Limit:        d.Limit.Limit,
		Remaining:    d.Remaining,
		WindowMS:     d.Limit.Window.Milliseconds(),
		Algorithm:    string(d.Limit.Algorithm),
		ResetAfterMS: ceilMS(d.ResetAfter),
		RetryAfterMS: ceilMS(d.RetryAfter),
		Blocked:      d.Blocked,
		Degraded:     d.Degraded,
		Node:         node,
	}
}

// policyName names the single quota policy in the RateLimit fields.
const policyName = `"default"`

// setRateLimitHeaders sets the RateLimit-Policy and RateLimit fields of
// draft-ietf-httpapi-ratelimit-headers-10 and, on denial, Retry-After. The
// reset parameter t points at the same moment as Retry-After when both are
// sent. A degraded decision knows nothing about the quota and sets none.
func setRateLimitHeaders(hdr http.Header, d Decision) {
	if d.Degraded {
		return
	}
	hdr.Set("RateLimit-Policy", fmt.Sprintf("%s;q=%d;w=%d", policyName, d.Limit.Limit, ceilSeconds(d.Limit.Window)))
	t := ceilSeconds(d.ResetAfter)
	if !d.Allowed {
		t = max(ceilSeconds(d.RetryAfter), 1)
		hdr.Set("Retry-After", strconv.FormatInt(t, 10))
	}
	hdr.Set("RateLimit", fmt.Sprintf("%s;r=%d;t=%d", policyName, d.Remaining, t))
}

func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(math.Ceil(d.Seconds()))
}

func ceilMS(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(math.Ceil(float64(d) / float64(time.Millisecond)))
}

func (h *handler) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "node": h.l.NodeID()})
}

func (h *handler) readyz(w http.ResponseWriter, r *http.Request) {
	if err := h.l.Ready(r.Context()); err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "node": h.l.NodeID()})
}

func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.l.Status())
}

func (h *handler) nodes(w http.ResponseWriter, r *http.Request) {
	nodes, err := h.l.Nodes(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.NodeList{Count: len(nodes), Nodes: nodes})
}

func (h *handler) drain(on bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if err := h.l.SetDraining(r.Context(), id, on); err != nil {
			writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, api.NodeAction{ID: id, Draining: on})
	})
}

func (h *handler) listCounters(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := intParam(q.Get("limit"), DefaultCounterListLimit, MaxCounterListLimit)
	if err != nil {
		writeError(w, r, err)
		return
	}
	list, err := h.l.ListCounters(r.Context(), q.Get("prefix"), limit, q.Get("cursor"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

// intParam parses an optional positive integer query parameter.
func intParam(s string, def, maxVal int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxVal {
		return 0, invalidf("limit %q must be an integer between 1 and %d", s, maxVal)
	}
	return n, nil
}

func (h *handler) counter(w http.ResponseWriter, r *http.Request) {
	c, err := h.l.Counter(r.Context(), r.PathValue("key"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (h *handler) resetCounter(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	n, err := h.l.ResetCounter(r.Context(), key)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.CounterReset{Key: key, Deleted: n})
}

func (h *handler) listLimits(w http.ResponseWriter, r *http.Request) {
	list, err := h.l.Limits(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

func (h *handler) getLimit(w http.ResponseWriter, r *http.Request) {
	pattern := r.PathValue("pattern")
	if err := ValidatePattern(pattern); err != nil {
		writeError(w, r, err)
		return
	}
	list, err := h.l.Limits(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	for _, lim := range list.Limits {
		if lim.Pattern == pattern {
			writeJSON(w, http.StatusOK, lim)
			return
		}
	}
	writeError(w, r, fmt.Errorf("limit %q: %w", pattern, ErrNotFound))
}

func (h *handler) putLimit(w http.ResponseWriter, r *http.Request) {
	pattern := r.PathValue("pattern")
	var spec api.LimitSpec
	if err := decodeJSON(r.Body, &spec); err != nil {
		writeError(w, r, err)
		return
	}
	if spec.WindowMS <= 0 {
		writeError(w, r, invalidf("window_ms %d must be positive", spec.WindowMS))
		return
	}
	if spec.WindowMS > MaxWindow.Milliseconds() {
		writeError(w, r, invalidf("window_ms %d exceeds the maximum of %d", spec.WindowMS, MaxWindow.Milliseconds()))
		return
	}
	lim := Limit{Limit: spec.Limit, Window: time.Duration(spec.WindowMS) * time.Millisecond, Algorithm: Algorithm(spec.Algorithm)}
	if _, err := h.l.PutLimit(r.Context(), pattern, lim); err != nil {
		writeError(w, r, err)
		return
	}
	list, err := h.l.Limits(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	for _, got := range list.Limits {
		if got.Pattern == pattern {
			writeJSON(w, http.StatusOK, got)
			return
		}
	}
	writeError(w, r, fmt.Errorf("limit %q stored but not found after reload", pattern))
}

func (h *handler) deleteLimit(w http.ResponseWriter, r *http.Request) {
	pattern := r.PathValue("pattern")
	v, err := h.l.DeleteLimit(r.Context(), pattern)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.LimitDeleted{Pattern: pattern, Version: v})
}

func (h *handler) listBlocks(w http.ResponseWriter, r *http.Request) {
	blocks, err := h.l.Blocks(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.BlockList{Count: len(blocks), Blocks: blocks})
}

func (h *handler) getBlock(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if err := ValidateKey(key); err != nil {
		writeError(w, r, err)
		return
	}
	blocks, err := h.l.Blocks(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	for _, b := range blocks {
		if b.Key == key {
			writeJSON(w, http.StatusOK, b)
			return
		}
	}
	writeError(w, r, fmt.Errorf("block %q: %w", key, ErrNotFound))
}

func (h *handler) putBlock(w http.ResponseWriter, r *http.Request) {
	var spec api.BlockSpec
	if err := decodeJSON(r.Body, &spec); err != nil {
		writeError(w, r, err)
		return
	}
	if spec.TTLMS <= 0 {
		writeError(w, r, invalidf("ttl_ms %d must be positive", spec.TTLMS))
		return
	}
	if spec.TTLMS > MaxBlockTTL.Milliseconds() {
		writeError(w, r, invalidf("ttl_ms %d exceeds the maximum of %d", spec.TTLMS, MaxBlockTTL.Milliseconds()))
		return
	}
	b, err := h.l.Block(r.Context(), r.PathValue("key"), time.Duration(spec.TTLMS)*time.Millisecond, spec.Reason)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

func (h *handler) deleteBlock(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if err := h.l.Unblock(r.Context(), key); err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.BlockDeleted{Key: key})
}

func (h *handler) hotkeys(w http.ResponseWriter, r *http.Request) {
	n, err := intParam(r.URL.Query().Get("limit"), DefaultHotKeys, MaxHotKeys)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.l.HotKeys(n))
}

func (h *handler) getChaos(w http.ResponseWriter, r *http.Request) {
	if !h.l.cfg.EnableChaos {
		writeError(w, r, ErrChaosDisabled)
		return
	}
	writeJSON(w, http.StatusOK, chaosAPI(h.l.Chaos()))
}

func (h *handler) setChaos(w http.ResponseWriter, r *http.Request) {
	if !h.l.cfg.EnableChaos {
		writeError(w, r, ErrChaosDisabled)
		return
	}
	var c api.Chaos
	if err := decodeJSON(r.Body, &c); err != nil {
		writeError(w, r, err)
		return
	}
	if c.ClockSkewMS < -MaxChaosClockSkew.Milliseconds() || c.ClockSkewMS > MaxChaosClockSkew.Milliseconds() {
		writeError(w, r, invalidf("clock_skew_ms %d must be within ±%d", c.ClockSkewMS, MaxChaosClockSkew.Milliseconds()))
		return
	}
	if c.RedisDelayMS < 0 || c.RedisDelayMS > MaxChaosRedisDelay.Milliseconds() {
		writeError(w, r, invalidf("redis_delay_ms %d must be between 0 and %d", c.RedisDelayMS, MaxChaosRedisDelay.Milliseconds()))
		return
	}
	set := Chaos{ClockSkew: time.Duration(c.ClockSkewMS) * time.Millisecond, RedisDelay: time.Duration(c.RedisDelayMS) * time.Millisecond}
	if err := h.l.SetChaos(set); err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, chaosAPI(h.l.Chaos()))
}

func (h *handler) clearChaos(w http.ResponseWriter, r *http.Request) {
	if err := h.l.SetChaos(Chaos{}); err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, chaosAPI(h.l.Chaos()))
}

func chaosAPI(c Chaos) api.Chaos {
	return api.Chaos{ClockSkewMS: c.ClockSkew.Milliseconds(), RedisDelayMS: c.RedisDelay.Milliseconds()}
}
