package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults of a run.
const (
	DefaultConcurrency = 64
	DefaultDuration    = 10 * time.Second
	DefaultKeys        = 1000
	DefaultKeyPrefix   = "bench:"
	DefaultTimeout     = 5 * time.Second
	// DefaultCeilingDuration is how long the Redis ceiling is measured.
	DefaultCeilingDuration = 5 * time.Second
	// MaxBatch bounds the checks of one batch request.
	MaxBatch = 1000
	// MaxErrorSamples bounds the distinct error messages a Result keeps.
	MaxErrorSamples = 5
)

// Config describes a run. Zero fields take the Default* values.
type Config struct {
	// Targets are node base URLs; workers spread requests over them
	// round robin.
	Targets []string `yaml:"targets"`
	// Concurrency is the number of workers, each with one request in flight.
	Concurrency int `yaml:"concurrency"`
	// Duration bounds the run.
	Duration time.Duration `yaml:"duration"`
	// Keys is the number of distinct keys, picked uniformly at random.
	Keys int `yaml:"keys"`
	// KeyPrefix starts every key.
	KeyPrefix string `yaml:"key_prefix"`
	// Timeout bounds each request.
	Timeout time.Duration `yaml:"timeout"`
	// Rate, when positive, offers that many decisions per second whatever
	// the answers (open loop): each request has an intended send time, and
	// its latency counts from then, so a stall shows in the percentiles
	// instead of slowing the load (no coordinated omission). Concurrency
	// then bounds the requests in flight. Zero: each worker sends its next
	// request when the last is answered (closed loop).
	Rate float64 `yaml:"rate"`
	// Batch, above 1, sends that many checks per request to the batch
	// endpoint (POST /v1/check:batch); every check counts as a decision.
	Batch int `yaml:"batch"`
	// Ceiling, when set, is the Redis URL whose un-pipelined EVALSHA rate is
	// measured before the run (see [Ceiling]), for the ratio of the
	// decisions per second to it.
	Ceiling string `yaml:"ceiling"`
	// CeilingDuration is how long the ceiling is measured (default 5s).
	CeilingDuration time.Duration `yaml:"ceiling_duration"`
	// HTTPClient, when set, sends the requests through net/http. By default
	// each worker writes requests on its own keep-alive HTTP/1.1 connection
	// per target and parses the answers itself (with net/http for https
	// targets), so the load generator spends as little CPU as possible and
	// leaves it to the nodes under test.
	HTTPClient *http.Client `yaml:"-"`
}

func (c Config) withDefaults() Config {
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.Keys == 0 {
		c.Keys = DefaultKeys
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = DefaultKeyPrefix
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Batch == 0 {
		c.Batch = 1
	}
	if c.CeilingDuration == 0 {
		c.CeilingDuration = DefaultCeilingDuration
	}
	return c
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if len(c.Targets) == 0 {
		errs = append(errs, errors.New("at least one target is required"))
	}
	for _, t := range c.Targets {
		u, err := url.Parse(t)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("target %q must be an http(s)://host:port URL", t))
		}
	}
	if c.Concurrency < 1 || c.Concurrency > 10000 {
		errs = append(errs, fmt.Errorf("concurrency %d must be between 1 and 10000", c.Concurrency))
	}
	if c.Duration < 0 || c.Duration > 24*time.Hour {
		errs = append(errs, fmt.Errorf("duration %s must be between 0 and 24h", c.Duration))
	}
	if c.Keys < 1 {
		errs = append(errs, fmt.Errorf("keys %d must be at least 1", c.Keys))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %s must be positive", c.Timeout))
	}
	if c.Rate < 0 {
		errs = append(errs, fmt.Errorf("rate %g must not be negative", c.Rate))
	}
	if c.Batch < 0 || c.Batch > MaxBatch {
		errs = append(errs, fmt.Errorf("batch %d must be between 1 and %d", c.Batch, MaxBatch))
	}
	if c.Batch > 1 && c.HTTPClient != nil {
		errs = append(errs, errors.New("batch requests go over the raw connections; leave HTTPClient unset"))
	}
	return errors.Join(errs...)
}

// Result summarises a run. Latencies cover answered checks (200 and 429).
type Result struct {
	Targets     []string      `json:"targets"`
	Concurrency int           `json:"concurrency"`
	Keys        int           `json:"keys"`
	Elapsed     time.Duration `json:"-"`
	ElapsedS    float64       `json:"elapsed_s"`
	// Decisions counts answered checks: Allowed plus Denied.
	Decisions int64 `json:"decisions"`
	Allowed   int64 `json:"allowed"`
	Denied    int64 `json:"denied"`
	// Errors counts transport failures and answers other than 200 and 429.
	Errors       int64    `json:"errors"`
	ErrorSamples []string `json:"error_samples,omitempty"`
	// PerSecond is Decisions divided by the elapsed time.
	PerSecond float64       `json:"decisions_per_second"`
	P50       time.Duration `json:"-"`
	P90       time.Duration `json:"-"`
	P99       time.Duration `json:"-"`
	P999      time.Duration `json:"-"`
	Max       time.Duration `json:"-"`
	P50MS     float64       `json:"p50_ms"`
	P90MS     float64       `json:"p90_ms"`
	P99MS     float64       `json:"p99_ms"`
	P999MS    float64       `json:"p999_ms"`
	MaxMS     float64       `json:"max_ms"`
	// Mode is "closed" or "open" (a fixed offered Rate); Batch the checks
	// per request.
	Mode  string  `json:"mode"`
	Rate  float64 `json:"rate,omitempty"`
	Batch int     `json:"batch"`
	// CeilingOpsPerSecond is the measured un-pipelined EVALSHA rate of the
	// same Redis (0 when not measured), RatioToCeiling PerSecond over it.
	CeilingOpsPerSecond float64 `json:"ceiling_ops_per_second,omitempty"`
	RatioToCeiling      float64 `json:"ratio_to_ceiling,omitempty"`
	// NodeCPUUSPerDecision is the CPU the nodes' processes spent during the
	// run (process_cpu_seconds_total, before and after) per decision, in
	// microseconds; 0 when a node does not export it.
	NodeCPUUSPerDecision float64 `json:"node_cpu_us_per_decision,omitempty"`
	NodeCPUSeconds       float64 `json:"node_cpu_seconds,omitempty"`
}

// String renders r for a terminal.
func (r Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "targets      %s\n", strings.Join(r.Targets, ", "))
	mode := "closed loop"
	if r.Mode == "open" {
		mode = fmt.Sprintf("open loop at %.0f decisions/s offered", r.Rate)
	}
	fmt.Fprintf(&b, "concurrency  %d, keys %d, %d check(s) per request, %s\n", r.Concurrency, r.Keys, r.Batch, mode)
	fmt.Fprintf(&b, "decisions    %d (allowed %d, denied %d) in %.2fs = %.0f decisions/s\n",
		r.Decisions, r.Allowed, r.Denied, r.Elapsed.Seconds(), r.PerSecond)
	fmt.Fprintf(&b, "latency      p50 %s  p90 %s  p99 %s  p999 %s  max %s\n", r.P50, r.P90, r.P99, r.P999, r.Max)
	if r.CeilingOpsPerSecond > 0 {
		fmt.Fprintf(&b, "ceiling      %.0f un-pipelined EVALSHA/s on the same Redis; ratio %.2f\n", r.CeilingOpsPerSecond, r.RatioToCeiling)
	}
	if r.NodeCPUUSPerDecision > 0 {
		fmt.Fprintf(&b, "node cpu     %.2fs, %.1f us per decision\n", r.NodeCPUSeconds, r.NodeCPUUSPerDecision)
	}
	fmt.Fprintf(&b, "errors       %d\n", r.Errors)
	for _, s := range r.ErrorSamples {
		fmt.Fprintf(&b, "             %s\n", s)
	}
	return b.String()
}

// worker is one load loop's private tallies.
type worker struct {
	hist                     *histogram
	allowed, denied, errored int64
	samples                  []string
	pace                     *pacer
	body                     []byte // the last batch answer
}

// A pacer gives an open-loop worker its intended send times: worker i of n
// sends requests i, i+n, i+2n, ... of a schedule at the offered rate. Nil
// in a closed loop.
type pacer struct {
	next   time.Time
	period time.Duration
}

func newPacer(start time.Time, cfg Config, i int) *pacer {
	if cfg.Rate <= 0 {
		return nil
	}
	requests := cfg.Rate / float64(cfg.Batch) // per second, all workers
	period := time.Duration(float64(cfg.Concurrency) / requests * float64(time.Second))
	offset := time.Duration(float64(i) / requests * float64(time.Second))
	return &pacer{next: start.Add(offset), period: period}
}

// wait sleeps until the next intended send time, or returns at once when
// it has passed (the worker is late: the latency will show it), and
// returns that time. A nil pacer returns now.
func (p *pacer) wait(ctx context.Context) (time.Time, bool) {
	if p == nil {
		return time.Now(), ctx.Err() == nil
	}
	t := p.next
	p.next = p.next.Add(p.period)
	if d := time.Until(t); d > 0 {
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-ctx.Done():
			return t, false
		case <-timer.C:
		}
	}
	return t, ctx.Err() == nil
}

// Run drives checks until cfg.Duration has passed or ctx is done, then
// reports. It returns an error only for an invalid configuration.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	cfg = cfg.withDefaults()
	hc := cfg.HTTPClient
	raw := hc == nil
	for _, t := range cfg.Targets {
		if strings.HasPrefix(t, "https:") {
			raw = false
		}
	}
	if hc == nil && !raw {
		tr := &http.Transport{
			DialContext:         (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        cfg.Concurrency * len(cfg.Targets),
			MaxIdleConnsPerHost: cfg.Concurrency,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		}
		defer tr.CloseIdleConnections()
		hc = &http.Client{Transport: tr}
	}
	urls := make([]string, len(cfg.Targets))
	for i, t := range cfg.Targets {
		urls[i] = strings.TrimRight(t, "/") + "/v1/check"
	}
	res := Result{Targets: cfg.Targets, Concurrency: cfg.Concurrency, Keys: cfg.Keys, Mode: "closed", Batch: cfg.Batch}
	if cfg.Rate > 0 {
		res.Mode, res.Rate = "open", cfg.Rate
	}
	if cfg.Ceiling != "" {
		var err error
		if res.CeilingOpsPerSecond, err = Ceiling(ctx, cfg.Ceiling, cfg.Concurrency, cfg.CeilingDuration); err != nil {
			return Result{}, err
		}
	}
	metricsClient := &http.Client{Timeout: cfg.Timeout}
	cpu0, cpuOK := nodeCPU(ctx, metricsClient, cfg.Targets)

	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	workers := make([]*worker, cfg.Concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range workers {
		w := &worker{hist: newHistogram(), pace: newPacer(start, cfg, i)}
		workers[i] = w
		if raw {
			wg.Go(func() { w.rawLoop(runCtx, cfg, uint64(i)) })
		} else {
			wg.Go(func() { w.loop(runCtx, hc, cfg, urls, uint64(i)) })
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	if cpuOK {
		if cpu1, ok := nodeCPU(ctx, metricsClient, cfg.Targets); ok {
			res.NodeCPUSeconds = cpu1 - cpu0
		}
	}

	total := newHistogram()
	res.Elapsed, res.ElapsedS = elapsed, elapsed.Seconds()
	seen := map[string]bool{}
	for _, w := range workers {
		total.merge(w.hist)
		res.Allowed += w.allowed
		res.Denied += w.denied
		res.Errors += w.errored
		for _, s := range w.samples {
			if !seen[s] && len(res.ErrorSamples) < MaxErrorSamples {
				seen[s] = true
				res.ErrorSamples = append(res.ErrorSamples, s)
			}
		}
	}
	res.Decisions = res.Allowed + res.Denied
	if elapsed > 0 {
		res.PerSecond = float64(res.Decisions) / elapsed.Seconds()
	}
	if res.CeilingOpsPerSecond > 0 {
		res.RatioToCeiling = res.PerSecond / res.CeilingOpsPerSecond
	}
	if res.NodeCPUSeconds > 0 && res.Decisions > 0 {
		res.NodeCPUUSPerDecision = res.NodeCPUSeconds * 1e6 / float64(res.Decisions)
	}
	res.P50, res.P90, res.P99, res.P999, res.Max = total.quantile(0.5), total.quantile(0.9), total.quantile(0.99), total.quantile(0.999), total.max
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	res.P50MS, res.P90MS, res.P99MS, res.P999MS, res.MaxMS = ms(res.P50), ms(res.P90), ms(res.P99), ms(res.P999), ms(res.Max)
	return res, nil
}

// nextBody writes the next request body into buf: one check, or a batch
// of cfg.Batch.
func nextBody(buf []byte, cfg Config, rng *rand.Rand) []byte {
	if cfg.Batch <= 1 {
		return appendCheck(buf[:0], cfg, rng)
	}
	buf = append(buf[:0], `{"checks":[`...)
	for i := range cfg.Batch {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendCheck(buf, cfg, rng)
	}
	return append(buf, "]}"...)
}

func appendCheck(buf []byte, cfg Config, rng *rand.Rand) []byte {
	buf = append(buf, `{"key":"`...)
	buf = append(buf, cfg.KeyPrefix...)
	buf = strconv.AppendInt(buf, int64(rng.IntN(cfg.Keys)), 10)
	return append(buf, `","cost":1}`...)
}

// tallyBatch counts the answer to a batch request from its body: one
// decision per "allowed" field.
func (w *worker) tallyBatch(status int, body []byte, d time.Duration) {
	if status != http.StatusOK {
		w.fail("status " + strconv.Itoa(status) + " " + http.StatusText(status))
		return
	}
	allowed := int64(bytes.Count(body, []byte(`"allowed":true`)))
	denied := int64(bytes.Count(body, []byte(`"allowed":false`)))
	if allowed+denied == 0 {
		w.fail("a batch answer without decisions")
		return
	}
	w.allowed += allowed
	w.denied += denied
	w.hist.record(d)
}

// tally counts one answer.
func (w *worker) tally(status int, d time.Duration) {
	switch status {
	case http.StatusOK:
		w.allowed++
		w.hist.record(d)
	case http.StatusTooManyRequests:
		w.denied++
		w.hist.record(d)
	default:
		w.fail("status " + strconv.Itoa(status) + " " + http.StatusText(status))
	}
}

// rawLoop sends checks on its own keep-alive connections until ctx is done.
func (w *worker) rawLoop(ctx context.Context, cfg Config, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, uint64(time.Now().UnixNano())))
	conns := make([]*rawConn, len(cfg.Targets))
	for i, t := range cfg.Targets {
		u, _ := url.Parse(t) // validated
		conns[i] = &rawConn{host: u.Host, path: strings.TrimRight(u.Path, "/") + "/v1/check"}
		if cfg.Batch > 1 {
			conns[i].path += ":batch"
			conns[i].keepBody = &w.body
		}
	}
	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()
	deadline, _ := ctx.Deadline()
	var body, req []byte
	for n := seed; ; n++ {
		t0, ok := w.pace.wait(ctx)
		if !ok {
			return
		}
		body = nextBody(body, cfg, rng)
		c := conns[n%uint64(len(conns))]
		until := time.Now().Add(cfg.Timeout)
		if deadline.Before(until) {
			until = deadline
		}
		status, err := c.do(&req, body, until, cfg.Timeout)
		if err != nil {
			if ctx.Err() != nil || time.Now().After(deadline) {
				return // the run ended mid-request: not an error
			}
			w.fail(err.Error())
			continue
		}
		if cfg.Batch > 1 {
			w.tallyBatch(status, w.body, time.Since(t0))
		} else {
			w.tally(status, time.Since(t0))
		}
	}
}

// rawConn is one keep-alive HTTP/1.1 connection to a node.
type rawConn struct {
	host, path string
	conn       net.Conn
	br         *bufio.Reader
	// keepBody, when set, receives each answer's body (batch answers are
	// counted from it); otherwise bodies are discarded.
	keepBody *[]byte
}

func (c *rawConn) close() {
	if c.conn != nil {
		_ = c.conn.Close()
		c.conn = nil
	}
}

// do posts body and returns the status; any error closes the connection so
// the next request redials.
func (c *rawConn) do(req *[]byte, body []byte, deadline time.Time, timeout time.Duration) (int, error) {
	if c.conn == nil {
		conn, err := net.DialTimeout("tcp", c.host, timeout)
		if err != nil {
			return 0, err
		}
		c.conn, c.br = conn, bufio.NewReaderSize(conn, 4096)
	}
	r := append((*req)[:0], "POST "...)
	r = append(r, c.path...)
	r = append(r, " HTTP/1.1\r\nHost: "...)
	r = append(r, c.host...)
	r = append(r, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	r = strconv.AppendInt(r, int64(len(body)), 10)
	r = append(r, "\r\n\r\n"...)
	r = append(r, body...)
	*req = r
	_ = c.conn.SetDeadline(deadline)
	if _, err := c.conn.Write(r); err != nil {
		c.close()
		return 0, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.close()
		return 0, err
	}
	if c.keepBody != nil {
		buf := bytes.NewBuffer((*c.keepBody)[:0])
		_, err = io.Copy(buf, resp.Body)
		*c.keepBody = buf.Bytes()
	} else {
		_, err = io.Copy(io.Discard, resp.Body)
	}
	_ = resp.Body.Close()
	if err != nil || resp.Close {
		c.close()
	}
	return resp.StatusCode, err
}

// loop sends checks through hc until ctx is done.
func (w *worker) loop(ctx context.Context, hc *http.Client, cfg Config, urls []string, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, uint64(time.Now().UnixNano())))
	var body []byte
	for n := seed; ; n++ {
		t0, ok := w.pace.wait(ctx)
		if !ok {
			return
		}
		body = nextBody(body, cfg, rng)
		rctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		req, err := http.NewRequestWithContext(rctx, http.MethodPost, urls[n%uint64(len(urls))], bytes.NewReader(body))
		if err != nil {
			cancel()
			w.fail(err.Error())
			return
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			cancel()
			if ctx.Err() != nil {
				return // the run ended mid-request: not an error
			}
			w.fail(err.Error())
			continue
		}
		// Drain so the connection is reused.
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		cancel()
		w.tally(resp.StatusCode, time.Since(t0))
	}
}

func (w *worker) fail(msg string) {
	w.errored++
	if len(w.samples) < MaxErrorSamples {
		w.samples = append(w.samples, msg)
	}
}
