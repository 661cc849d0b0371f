package ratelimiter

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/operator-dev/operator/observers"
	"github.com/operator-dev/operator/ratelimiter/api"
	"github.com/operator-dev/operator/ratelimiter/client"
	"github.com/operator-dev/operator/schemas"
)

// Defaults for ObserverConfig.
const (
	DefaultMaxKeys    = 20
	DefaultScanBudget = 2000
	// DefaultHTTPTimeout bounds each request to a node, inside the poll's
	// own timeout, so one hung node cannot eat the whole poll.
	DefaultHTTPTimeout = 500 * time.Millisecond
)

// ObserverConfig configures an Observer.
type ObserverConfig struct {
	// Nodes are base URLs of rate limiter nodes; more are discovered from
	// the node registry.
	Nodes []string `yaml:"nodes"`
	// Token is sent to the management API when set.
	Token string `yaml:"token"`
	// MaxKeys bounds the hot keys examined per poll.
	MaxKeys int `yaml:"max_keys"`
	// ScanBudget bounds the Redis keys examined per poll for missing TTLs.
	ScanBudget int `yaml:"scan_budget"`
	// HTTPTimeout bounds each request to a node.
	HTTPTimeout time.Duration `yaml:"http_timeout"`
	// HTTPClient is used for every node (default: a client with pooled
	// keep-alive connections).
	HTTPClient *http.Client `yaml:"-"`
	// Redis is the limiter's Redis, checked directly; nil skips the Redis
	// checks (reported as an observer error).
	Redis redis.UniversalClient `yaml:"-"`
}

// Validate checks the configuration.
func (c ObserverConfig) Validate() error {
	var errs []error
	if len(c.Nodes) == 0 {
		errs = append(errs, errors.New("at least one node URL is needed"))
	}
	for _, n := range c.Nodes {
		if u, err := url.Parse(n); err != nil || u.Scheme == "" || u.Host == "" {
			errs = append(errs, fmt.Errorf("node URL %q: want http://host:port", n))
		}
	}
	if c.MaxKeys < 0 || c.ScanBudget < 0 || c.HTTPTimeout < 0 {
		errs = append(errs, errors.New("max_keys, scan_budget and http_timeout must not be negative"))
	}
	return errors.Join(errs...)
}

// An Observer observes a rate limiter cluster. It implements
// observers.Source; Observe must not be called concurrently.
type Observer struct {
	cfg ObserverConfig
	hc  *http.Client

	// mu guards the scrape history and known nodes between polls.
	mu    sync.Mutex
	prev  map[string]timedScrape // by node address
	known []string               // addresses seen in the registry
}

type timedScrape struct {
	at time.Time
	s  scrape
}

var _ observers.Source = (*Observer)(nil)

// NewObserver returns an Observer.
func NewObserver(cfg ObserverConfig) (*Observer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxKeys == 0 {
		cfg.MaxKeys = DefaultMaxKeys
	}
	if cfg.ScanBudget == 0 {
		cfg.ScanBudget = DefaultScanBudget
	}
	if cfg.HTTPTimeout == 0 {
		cfg.HTTPTimeout = DefaultHTTPTimeout
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second}}
	}
	return &Observer{cfg: cfg, hc: hc, prev: map[string]timedScrape{}}, nil
}

// nodeObs collects what was learnt about one node.
type nodeObs struct {
	node    Node
	client  *client.Client
	hot     *api.HotKeys
	scraped bool
}

// errList collects observer errors from concurrent fetches.
type errList struct {
	mu   sync.Mutex
	errs []schemas.ObserverError
}

func (e *errList) add(source string, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.errs = append(e.errs, schemas.ObserverError{Source: source, Message: err.Error()})
}

// Observe polls the cluster once. It never returns an error: whatever could
// not be read is listed in the state's Errors and the rest is reported.
func (o *Observer) Observe(ctx context.Context) (observers.State, error) {
	var errs errList
	st := State{Nodes: []Node{}, Keys: []Key{}, Limits: []Limit{}, Blocks: []Block{}}

	var wg sync.WaitGroup
	wg.Go(func() {
		if o.cfg.Redis == nil {
			errs.add("redis", errors.New("no Redis configured for the observer"))
			st.Redis.KeysWithoutTTL.Sample = []StaleRedis{}
			return
		}
		rs, err := observeRedis(ctx, o.cfg.Redis, o.cfg.ScanBudget)
		if err != nil {
			errs.add("redis", err)
		}
		st.Redis = rs
	})

	nodes := o.discover(ctx, &errs)
	o.observeNodes(ctx, nodes, &errs)
	wg.Wait()

	var hot []api.HotKeys
	for _, n := range nodes {
		st.Nodes = append(st.Nodes, n.node)
		if n.hot != nil {
			hot = append(hot, *n.hot)
		}
	}
	sort.Slice(st.Nodes, func(i, j int) bool { return st.Nodes[i].ID < st.Nodes[j].ID })
	reachable := reachableClients(nodes)
	changed := map[string]time.Time{}
	if len(reachable) > 0 {
		st.Limits, st.Blocks, changed = o.limitsAndBlocks(ctx, reachable[0], &errs)
	} else {
		errs.add("nodes", errors.New("no node reachable"))
	}
	st.Keys = o.observeKeys(ctx, mergeHotKeys(hot), st.Limits, st.Blocks, changed, reachable, &errs)
	st.Summary = summarize(st)
	sort.Slice(errs.errs, func(i, j int) bool { return errs.errs[i].Source < errs.errs[j].Source })
	return observers.State{Value: st, Errors: errs.errs}, nil
}

func (o *Observer) newClient(addr string) (*client.Client, error) {
	c, err := client.New(addr, o.hc)
	if err != nil {
		return nil, err
	}
	if o.cfg.Token != "" {
		c = c.WithToken(o.cfg.Token)
	}
	return c, nil
}

func (o *Observer) timeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, o.cfg.HTTPTimeout)
}

// discover lists the nodes: the registry as any reachable node reports it,
// plus configured URLs the registry does not name. A node that stopped
// heartbeating stays in the registry as down, so it is never silently lost.
func (o *Observer) discover(ctx context.Context, errs *errList) []*nodeObs {
	o.mu.Lock()
	candidates := append(slices.Clone(o.cfg.Nodes), o.known...)
	o.mu.Unlock()

	var reg *api.NodeList
	tried := map[string]bool{}
	for _, addr := range candidates {
		addr = normalize(addr)
		if tried[addr] {
			continue
		}
		tried[addr] = true
		c, err := o.newClient(addr)
		if err != nil {
			continue
		}
		cctx, cancel := o.timeout(ctx)
		nl, err := c.Nodes(cctx)
		cancel()
		if err == nil {
			reg = &nl
			break
		}
	}
	byAddr := map[string]*nodeObs{}
	var out []*nodeObs
	add := func(addr string, n Node) {
		addr = normalize(addr)
		if _, ok := byAddr[addr]; ok {
			return
		}
		c, err := o.newClient(addr)
		if err != nil {
			errs.add("node "+addr, err)
			return
		}
		n.Address = addr
		no := &nodeObs{node: n, client: c}
		byAddr[addr] = no
		out = append(out, no)
	}
	if reg == nil {
		errs.add("registry", errors.New("no node answered GET /api/v1/nodes"))
	} else {
		var known []string
		for _, rn := range reg.Nodes {
			if rn.Address == "" {
				continue
			}
			known = append(known, normalize(rn.Address))
			add(rn.Address, Node{ID: rn.ID, State: rn.State, HeartbeatAgeMS: float64(rn.HeartbeatAgeMS)})
		}
		o.mu.Lock()
		o.known = known
		o.mu.Unlock()
	}
	for _, addr := range o.cfg.Nodes {
		add(addr, Node{ID: "", State: "unknown"})
	}
	return out
}

func normalize(addr string) string { return strings.TrimRight(addr, "/") }

// observeNodes reads every node's status, metrics and hot keys in parallel.
func (o *Observer) observeNodes(ctx context.Context, nodes []*nodeObs, errs *errList) {
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() { o.observeNode(ctx, n, errs) })
	}
	wg.Wait()
}

func (o *Observer) observeNode(ctx context.Context, n *nodeObs, errs *errList) {
	name := n.node.ID
	if name == "" {
		name = n.node.Address
	}
	source := "node " + name
	cctx, cancel := o.timeout(ctx)
	status, err := n.client.Status(cctx)
	cancel()
	if err != nil {
		errs.add(source, fmt.Errorf("status: %w", err))
		if n.node.ID == "" {
			n.node.ID = n.node.Address
		}
		return
	}
	n.node.Reachable = true
	if n.node.ID == "" {
		n.node.ID = status.Node
	}
	if n.node.State == "unknown" || n.node.State == "" {
		n.node.State = status.State
	}
	n.node.RedisUp, n.node.Draining = status.RedisUp, status.Draining

	at := time.Now()
	s, err := o.scrapeNode(ctx, n.node.Address)
	if err != nil {
		errs.add(source, fmt.Errorf("metrics: %w", err))
	} else {
		n.scraped = true
		o.applyScrape(n, at, s)
	}
	cctx, cancel = o.timeout(ctx)
	hk, err := n.client.HotKeys(cctx, o.cfg.MaxKeys)
	cancel()
	if err != nil {
		errs.add(source, fmt.Errorf("hot keys: %w", err))
	} else {
		n.hot = &hk
	}
}

func (o *Observer) scrapeNode(ctx context.Context, addr string) (scrape, error) {
	cctx, cancel := o.timeout(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, addr+"/metrics", nil)
	if err != nil {
		return scrape{}, err
	}
	resp, err := o.hc.Do(req)
	if err != nil {
		return scrape{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return scrape{}, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return parseScrape(resp.Body)
}

// applyScrape turns the difference between this scrape and the previous one
// of the same node into rates and p99s.
func (o *Observer) applyScrape(n *nodeObs, at time.Time, s scrape) {
	n.node.RedisUp = n.node.RedisUp && s.redisUp
	if s.hasOffset {
		n.node.ClockOffsetMS = s.clockOffset * 1000
	}
	o.mu.Lock()
	prev, ok := o.prev[n.node.Address]
	o.prev[n.node.Address] = timedScrape{at: at, s: s}
	o.mu.Unlock()
	if !ok {
		return
	}
	secs := at.Sub(prev.at).Seconds()
	if d, ok := delta(prev.s.check, s.check); ok {
		n.node.CheckP99MS = quantile(0.99, d) * 1000
	}
	if d, ok := delta(prev.s.redis, s.redis); ok {
		n.node.RedisP99MS = quantile(0.99, d) * 1000
	}
	if secs > 0 {
		var total, denied float64
		for result, v := range s.checks {
			dv := v - prev.s.checks[result]
			if dv < 0 { // the node restarted
				return
			}
			total += dv
			if result == "denied" || result == "blocked" {
				denied += dv
			}
		}
		n.node.ChecksPerS, n.node.DeniedPerS = total/secs, denied/secs
	}
}

func reachableClients(nodes []*nodeObs) []*nodeObs {
	var out []*nodeObs
	for _, n := range nodes {
		if n.node.Reachable {
			out = append(out, n)
		}
	}
	return out
}

// limitsAndBlocks also returns when each limit pattern last changed.
func (o *Observer) limitsAndBlocks(ctx context.Context, n *nodeObs, errs *errList) ([]Limit, []Block, map[string]time.Time) {
	limits, blocks, changed := []Limit{}, []Block{}, map[string]time.Time{}
	cctx, cancel := o.timeout(ctx)
	ll, err := n.client.Limits(cctx)
	cancel()
	if err != nil {
		errs.add("limits", err)
	} else {
		for _, l := range ll.Limits {
			limits = append(limits, Limit{Pattern: l.Pattern, Limit: l.Limit, WindowMS: l.WindowMS, Algorithm: l.Algorithm})
			changed[l.Pattern] = l.UpdatedAt
		}
	}
	cctx, cancel = o.timeout(ctx)
	bl, err := n.client.Blocks(cctx)
	cancel()
	if err != nil {
		errs.add("blocks", err)
	} else {
		for _, b := range bl.Blocks {
			blocks = append(blocks, Block{Key: b.Key, TTLMS: b.TTLMS, Reason: b.Reason})
		}
	}
	return limits, blocks, changed
}

// observeKeys reads the counters of the busiest keys and of every exactly
// configured key from every reachable node, so drift between the nodes'
// views shows.
//
// Over-admission is judged only on traffic since the key's limit last
// changed: what a previous configuration admitted is history, not a fault of
// the current one.
func (o *Observer) observeKeys(ctx context.Context, ht hotTraffic, limits []Limit, blocks []Block, changed map[string]time.Time,
	nodes []*nodeObs, errs *errList) []Key {
	names := []string{}
	seen := map[string]bool{}
	for _, t := range ht.busiest(o.cfg.MaxKeys) {
		names = append(names, t.key)
		seen[t.key] = true
	}
	for _, l := range limits {
		if !strings.Contains(l.Pattern, "*") && !seen[l.Pattern] && len(names) < 2*o.cfg.MaxKeys {
			names = append(names, l.Pattern)
			seen[l.Pattern] = true
		}
	}
	sort.Strings(names)
	keys := make([]Key, len(names))
	patterns := make([]string, len(names))
	if len(nodes) == 0 {
		return []Key{}
	}
	blocked := map[string]bool{}
	for _, b := range blocks {
		blocked[b.Key] = true
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, name := range names {
		k, pattern := &keys[i], &patterns[i]
		k.Key, k.CountByNode, k.TTLMS = name, map[string]float64{}, -2
		for _, n := range nodes {
			g.Go(func() error {
				cctx, cancel := o.timeout(gctx)
				c, err := n.client.Counter(cctx, name)
				cancel()
				if err != nil {
					errs.add("node "+n.node.ID, fmt.Errorf("counter %s: %w", name, err))
					return nil
				}
				mu.Lock()
				defer mu.Unlock()
				k.CountByNode[n.node.ID] = float64(c.Count)
				k.Limit, k.WindowMS, k.Algorithm, k.TTLMS, *pattern = c.Limit, c.WindowMS, c.Algorithm, c.TTLMS, c.Pattern
				k.Blocked = k.Blocked || c.Blocked
				return nil
			})
		}
	}
	_ = g.Wait() // errors are recorded per counter
	out := make([]Key, 0, len(keys))
	for i, k := range keys {
		if k.Algorithm == "" { // no node answered for this key
			continue
		}
		t := ht.keys[k.Key]
		k.Blocked = k.Blocked || blocked[k.Key]
		k.Drift = drift(k.CountByNode)
		var since int64
		if at, ok := changed[patterns[i]]; ok && !at.IsZero() {
			since = at.UnixMilli()
		}
		k.AllowedMaxWindow = ht.allowedMaxWindow(t, k.WindowMS, since)
		k.AllowedLastWindow = ht.allowedLastWindow(t, k.WindowMS)
		k.ChecksPerS, k.DeniedPerS = ht.rates(t)
		out = append(out, k)
	}
	return out
}

func drift(counts map[string]float64) float64 {
	if len(counts) < 2 {
		return 0
	}
	first := true
	var lo, hi float64
	for _, c := range counts {
		if first {
			lo, hi, first = c, c, false
			continue
		}
		lo, hi = min(lo, c), max(hi, c)
	}
	return hi - lo
}

func summarize(st State) Summary {
	s := Summary{NodesTotal: len(st.Nodes), KeysTracked: len(st.Keys)}
	for _, n := range st.Nodes {
		if n.State == api.NodeUp && n.Reachable {
			s.NodesUp++
		}
	}
	rates := make([]float64, 0, len(st.Keys))
	for _, k := range st.Keys {
		rates = append(rates, k.ChecksPerS)
	}
	s.MedianKeyChecksPerS = median(rates)
	return s
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	sort.Float64s(xs)
	m := len(xs) / 2
	if len(xs)%2 == 1 {
		return xs[m]
	}
	return (xs[m-1] + xs[m]) / 2
}
