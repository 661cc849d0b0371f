package tikv

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/operator-dev/operator/observers"
	"github.com/operator-dev/operator/schemas"
	"github.com/operator-dev/operator/subjects/tikv/pdapi"
	"github.com/operator-dev/operator/subjects/tikv/tikvmetrics"
)

// DefaultSampleSize is how many region ids each regions/check summary
// carries.
const DefaultSampleSize = 5

// ObserverConfig configures an Observer. PD.URLs is required; the zero value of
// every other field is a working default.
type ObserverConfig struct {
	// PD says how to reach PD: the client fails over across PD.URLs.
	PD pdapi.Config `yaml:"pd"`
	// Prometheus says how to reach the Prometheus that scrapes the TiKV
	// status ports. An empty URL means none: p99 and raft log lag are then
	// null (no data), and sizes come from PD.
	Prometheus tikvmetrics.Config `yaml:"prometheus"`
	// SampleSize is how many region ids each regions/check summary
	// carries, at most MaxSample (default DefaultSampleSize).
	SampleSize int `yaml:"sample_size"`
	// Now is the clock Observe reads the poll time from, to age PD's last
	// heartbeats and to ask Prometheus for the values at that instant. Nil
	// means time.Now. Tests driving a fake PD's clock set it.
	Now func() time.Time `yaml:"-"`
}

// Validate reports every problem with the configuration at once.
func (c ObserverConfig) Validate() error {
	var errs []error
	if err := c.PD.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Prometheus.URL != "" {
		if err := c.Prometheus.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.SampleSize < 0 || c.SampleSize > MaxSample {
		errs = append(errs, fmt.Errorf("tikv observer: sample size %d must be between 0 and %d", c.SampleSize, MaxSample))
	}
	return errors.Join(errs...)
}

// Observer reads one TiKV cluster. It is an [observers.Source]: give it to
// [observers.New] with Subject "tikv". It is safe for concurrent use, though
// the runtime calls it from one goroutine at a time.
//
// What one poll does: it calls every PD endpoint it needs once, and runs
// every Prometheus query once, all concurrently, and joins the answers
// (metrics to stores on the store's status_address, Prometheus's `instance`
// label). The stores come from GET /stores/check with no state filter, which
// lists every store, Tombstones included (GET /stores hides them); a PD
// older than v7.5, which lacks it, falls back to GET /stores with an error
// saying Tombstones are not listed.
//
// Failures: a call that fails leaves its fields out of the state and adds an
// entry to the observation's errors, so "could not look" never reads as
// "nothing wrong". When no PD URL answers at all, the state says
// pd.reachable false, with one error entry and no store, member or region
// fields. Prometheus that cannot be queried leaves p99_ms and raft_log_lag
// out of every store; Prometheus that answers without a series for a store
// gives null (no data). Observe returns an error only when its ctx is
// canceled (the observer is stopping), so a poll that times out is still
// published with what it found.
type Observer struct {
	pd     *pdapi.Client
	prom   *tikvmetrics.Client
	sample int
	now    func() time.Time
}

// NewObserver returns an Observer for cfg, or the errors of cfg.Validate.
// `operator observe tikv` builds one from its flags.
func NewObserver(cfg ObserverConfig) (*Observer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pd, err := pdapi.New(cfg.PD)
	if err != nil {
		return nil, err
	}
	o := &Observer{pd: pd, sample: cfg.SampleSize, now: cfg.Now}
	if cfg.Prometheus.URL != "" {
		if o.prom, err = tikvmetrics.New(cfg.Prometheus); err != nil {
			return nil, err
		}
	}
	if o.sample == 0 {
		o.sample = DefaultSampleSize
	}
	if o.now == nil {
		o.now = time.Now
	}
	return o, nil
}

var _ observers.Source = (*Observer)(nil)

// Observe polls the cluster at the time the configured clock gives.
func (o *Observer) Observe(ctx context.Context) (observers.State, error) {
	return o.ObserveAt(ctx, o.now())
}

// ObserveAt polls the cluster; now is the poll time, against which PD's
// last heartbeats are aged and at which Prometheus is queried. It returns
// an error only when ctx is canceled.
func (o *Observer) ObserveAt(ctx context.Context, now time.Time) (observers.State, error) {
	var (
		pd   pdReadings
		prom promReadings
		wg   sync.WaitGroup
	)
	wg.Go(func() { pd = o.readPD(ctx) })
	if o.prom != nil {
		wg.Go(func() { prom = o.readProm(ctx, now) })
	}
	wg.Wait()
	if errors.Is(ctx.Err(), context.Canceled) {
		return observers.State{}, fmt.Errorf("tikv observer: %w", ctx.Err())
	}
	st, errs := o.assemble(pd, prom, now)
	return observers.State{Value: st, Errors: errs}, nil
}

// result is one PD call's answer.
type result[T any] struct {
	v   T
	err error
}

// pdReadings holds every PD call of one poll.
type pdReadings struct {
	stores        result[[]pdapi.Store]
	storesHidden  bool // fell back to GET /stores: Tombstones are missing
	evicting      result[[]uint64]
	limits        result[map[uint64]pdapi.StoreLimit]
	health        result[[]pdapi.MemberHealth]
	members       result[pdapi.Members]
	schedule      result[pdapi.ScheduleConfig]
	schedulers    result[[]string]
	regionCount   result[int]
	checks        [len(regionChecks)]result[pdapi.Regions]
	operators     result[[]pdapi.Operator]
	answeredByURL string
}

// regionChecks are the regions/check lists the observer reads, in the
// order of pdReadings.checks.
var regionChecks = [...]pdapi.RegionCheck{pdapi.CheckDownPeer, pdapi.CheckMissPeer, pdapi.CheckPendingPeer, pdapi.CheckOfflinePeer}

// readPD makes every PD call of a poll concurrently, each once.
func (o *Observer) readPD(ctx context.Context) pdReadings {
	var r pdReadings
	var wg sync.WaitGroup
	wg.Go(func() {
		r.stores.v, r.stores.err = o.pd.StoresByState(ctx)
		var e *pdapi.Error
		if errors.As(r.stores.err, &e) && e.Status == http.StatusNotFound {
			// PD older than v7.5 has no /stores/check.
			r.stores.v, r.stores.err = o.pd.Stores(ctx)
			r.storesHidden = r.stores.err == nil
		}
	})
	wg.Go(func() { r.evicting.v, r.evicting.err = o.pd.EvictLeaderStores(ctx) })
	wg.Go(func() { r.limits.v, r.limits.err = o.pd.StoreLimits(ctx) })
	wg.Go(func() { r.health.v, r.health.err = o.pd.Health(ctx) })
	wg.Go(func() { r.members.v, r.members.err = o.pd.Members(ctx) })
	wg.Go(func() { r.schedule.v, r.schedule.err = o.pd.ScheduleConfig(ctx) })
	wg.Go(func() { r.schedulers.v, r.schedulers.err = o.pd.Schedulers(ctx) })
	wg.Go(func() { r.regionCount.v, r.regionCount.err = o.pd.RegionCount(ctx) })
	for i, check := range regionChecks {
		wg.Go(func() { r.checks[i].v, r.checks[i].err = o.pd.CheckRegions(ctx, check) })
	}
	wg.Go(func() { r.operators.v, r.operators.err = o.pd.Operators(ctx) })
	wg.Wait()
	r.answeredByURL = o.pd.CurrentURL()
	return r
}

// promReadings holds every Prometheus query of one poll, by instance.
type promReadings struct {
	p99, lag, available, capacity result[map[string]float64]
}

// readProm runs the queries concurrently, each once, at now. The queries
// are tikvmetrics's, run one by one rather than through Snapshot so a
// failed query is known as such (its values are unknown, not absent).
func (o *Observer) readProm(ctx context.Context, now time.Time) promReadings {
	var r promReadings
	var wg sync.WaitGroup
	for _, q := range []struct {
		expr string
		dst  *result[map[string]float64]
	}{
		{tikvmetrics.QueryGRPCP99, &r.p99},
		{tikvmetrics.QueryRaftLogLagP99, &r.lag},
		{tikvmetrics.QueryStoreAvailable, &r.available},
		{tikvmetrics.QueryStoreCapacity, &r.capacity},
	} {
		wg.Go(func() { q.dst.v, q.dst.err = o.prom.ByInstance(ctx, q.expr, now) })
	}
	wg.Wait()
	for inst, sec := range r.p99.v {
		r.p99.v[inst] = sec * 1000 // the query is in seconds
	}
	return r
}

// answered reports whether err is nil or an answer from PD (an HTTP status),
// as opposed to no answer at all.
func answered(err error) bool {
	if err == nil {
		return true
	}
	var e *pdapi.Error
	return errors.As(err, &e) && e.Status != 0
}

// assemble builds the state and the error list from one poll's readings.
func (o *Observer) assemble(pd pdReadings, prom promReadings, now time.Time) (State, []schemas.ObserverError) {
	st := State{PD: PDState{URL: pd.answeredByURL}, Prometheus: PromState{Configured: o.prom != nil}}
	var errs []schemas.ObserverError
	fail := func(source string, err error) {
		errs = append(errs, schemas.ObserverError{Source: source, Message: err.Error()})
	}

	all := []error{pd.stores.err, pd.evicting.err, pd.limits.err, pd.health.err, pd.members.err, pd.schedule.err,
		pd.schedulers.err, pd.regionCount.err, pd.operators.err}
	for _, c := range pd.checks {
		all = append(all, c.err)
	}
	st.PD.Reachable = slices.ContainsFunc(all, answered)
	if !st.PD.Reachable {
		// One entry rather than one per endpoint: nothing answered.
		fail("pd", fmt.Errorf("no PD URL answered: %w", firstError(all)))
	}
	check := func(source string, err error) bool {
		if err == nil {
			return true
		}
		if st.PD.Reachable {
			fail(source, err)
		}
		return false
	}
	// A cluster no TiKV has joined yet answers store and region endpoints
	// with ErrNotBootstrapped: that is a fact (no stores, no regions), not
	// a failure to look.
	notBootstrapped := func(err error) bool { return errors.Is(err, pdapi.ErrNotBootstrapped) }

	if o.prom != nil {
		st.Prometheus.Reachable = prom.p99.err == nil || prom.lag.err == nil || prom.available.err == nil || prom.capacity.err == nil
		for _, q := range []struct {
			name string
			r    result[map[string]float64]
		}{{"grpc_p99", prom.p99}, {"raft_log_lag_p99", prom.lag}, {"store_available", prom.available}, {"store_capacity", prom.capacity}} {
			if q.r.err != nil {
				fail("prometheus."+q.name, q.r.err)
			}
		}
	}

	// Stores.
	switch {
	case notBootstrapped(pd.stores.err):
		st.Stores = []Store{}
	case check("pd.stores", pd.stores.err):
		if pd.storesHidden {
			fail("pd.stores", errors.New("PD has no /stores/check (older than v7.5): read /stores, which hides Tombstone stores"))
		}
		evictOK := check("pd.evict_leader", pd.evicting.err)
		limitsOK := check("pd.store_limits", pd.limits.err)
		st.Stores = make([]Store, 0, len(pd.stores.v))
		for _, s := range pd.stores.v {
			st.Stores = append(st.Stores, o.store(s, now, pd, evictOK, limitsOK, prom))
		}
		slices.SortFunc(st.Stores, func(a, b Store) int { return cmp.Compare(a.ID, b.ID) })
	}

	// Regions.
	switch {
	case notBootstrapped(pd.regionCount.err):
		st.Regions.Count = new(0)
	case check("pd.regions_count", pd.regionCount.err):
		st.Regions.Count = new(pd.regionCount.v)
	}
	dst := [...]**RegionCheck{&st.Regions.DownPeer, &st.Regions.MissPeer, &st.Regions.PendingPeer, &st.Regions.OfflinePeer}
	allChecks := true
	var listed []pdapi.Region
	for i, c := range pd.checks {
		switch {
		case notBootstrapped(c.err):
			*dst[i] = &RegionCheck{Sample: []uint64{}}
		case check("pd.regions_check."+string(regionChecks[i]), c.err):
			*dst[i] = o.regionCheck(c.v.Count, c.v.Regions)
			listed = append(listed, c.v.Regions...)
		default:
			allChecks = false
		}
	}
	if allChecks {
		st.Regions.Leaderless = o.leaderless(listed)
	}

	// Members: the union of /health and /members, by member id.
	healthOK := check("pd.health", pd.health.err)
	membersOK := check("pd.members", pd.members.err)
	if healthOK || membersOK {
		st.Members = members(pd, healthOK, membersOK)
	}

	// Schedule and operators.
	if check("pd.schedule_config", pd.schedule.err) {
		sc := pd.schedule.v
		st.Schedule = &Schedule{
			MaxStoreDownTimeS:   sc.MaxStoreDownTime.Seconds(),
			LeaderScheduleLimit: sc.LeaderScheduleLimit,
			RegionScheduleLimit: sc.RegionScheduleLimit,
		}
		if check("pd.schedulers", pd.schedulers.err) {
			st.Schedule.Schedulers = slices.Sorted(slices.Values(pd.schedulers.v))
			if st.Schedule.Schedulers == nil {
				st.Schedule.Schedulers = []string{}
			}
		}
	} else if pd.schedulers.err != nil {
		check("pd.schedulers", pd.schedulers.err)
	}
	if check("pd.operators", pd.operators.err) {
		st.Operators = operators(pd.operators.v)
	}
	return st, errs
}

// store builds one store, joining the metrics on its status address.
func (o *Observer) store(s pdapi.Store, now time.Time, pd pdReadings, evictOK, limitsOK bool, prom promReadings) Store {
	out := Store{
		ID:             s.ID(),
		Address:        s.Meta.Address,
		StatusAddress:  s.Meta.StatusAddress,
		StateName:      stateName(s.State()),
		CapacityBytes:  uint64(s.Status.Capacity),
		AvailableBytes: uint64(s.Status.Available),
		LeaderCount:    s.Status.LeaderCount,
		RegionCount:    s.Status.RegionCount,
	}
	if age, ok := s.HeartbeatAge(now); ok {
		out.LastHeartbeatAgeS = new(math.Round(age.Seconds()*1000) / 1000)
	}
	if evictOK {
		out.EvictLeader = new(slices.Contains(pd.evicting.v, out.ID))
	}
	if limitsOK {
		if lim, ok := pd.limits.v[out.ID]; ok {
			out.AddPeerLimit, out.RemovePeerLimit = new(lim.AddPeer), new(lim.RemovePeer)
		}
	}
	if o.prom == nil {
		out.P99MS, out.RaftLogLag = NoData(), NoData()
		return out
	}
	inst := out.StatusAddress
	out.P99MS = measure(prom.p99, inst)
	out.RaftLogLag = measure(prom.lag, inst)
	if prom.available.err == nil && prom.capacity.err == nil {
		avail, okA := prom.available.v[inst]
		capa, okC := prom.capacity.v[inst]
		if okA && okC && inst != "" {
			out.AvailableBytes, out.CapacityBytes = toBytes(avail), toBytes(capa)
		}
	}
	return out
}

// measure is a query's value for an instance: not read when the query
// failed, no data when it has no series for the instance.
func measure(r result[map[string]float64], instance string) Measurement {
	if r.err != nil {
		return Measurement{}
	}
	v, ok := r.v[instance]
	if !ok || instance == "" {
		return NoData()
	}
	return Value(v)
}

func toBytes(v float64) uint64 {
	if v <= 0 || math.IsNaN(v) {
		return 0
	}
	return uint64(math.Round(v))
}

// knownStates are the state names the schema lists.
var knownStates = []string{"Up", "Disconnected", "Down", "Offline", "Tombstone", "Preparing", "Serving", "Removing", "Removed"}

func stateName(s pdapi.StoreState) string {
	if slices.Contains(knownStates, string(s)) {
		return string(s)
	}
	return "Unknown"
}

// regionCheck summarises one regions/check list. PD's count is the list's
// length; the larger of the two is taken should they differ.
func (o *Observer) regionCheck(count int, regions []pdapi.Region) *RegionCheck {
	rc := &RegionCheck{Count: max(count, len(regions)), Sample: []uint64{}}
	for _, r := range regions {
		if len(rc.Sample) == o.sample {
			break
		}
		rc.Sample = append(rc.Sample, r.ID)
	}
	return rc
}

// leaderless counts the distinct regions without a leader among those the
// checks listed. PD sends a leaderless region's leader as an object with no
// id and no store id.
func (o *Observer) leaderless(listed []pdapi.Region) *RegionCheck {
	seen := map[uint64]bool{}
	var regions []pdapi.Region
	for _, r := range listed {
		if seen[r.ID] || r.HasLeader() {
			continue
		}
		seen[r.ID] = true
		regions = append(regions, r)
	}
	slices.SortFunc(regions, func(a, b pdapi.Region) int { return cmp.Compare(a.ID, b.ID) })
	return o.regionCheck(len(regions), regions)
}

// members joins GET /health and GET /members by member id, sorted by name.
func members(pd pdReadings, healthOK, membersOK bool) []Member {
	byID := map[uint64]*Member{}
	var order []uint64
	get := func(id uint64, name string, urls []string) *Member {
		m, ok := byID[id]
		if !ok {
			m = &Member{Name: name, MemberID: strconv.FormatUint(id, 10)}
			byID[id] = m
			order = append(order, id)
		}
		if m.Name == "" {
			m.Name = name
		}
		if len(m.ClientURLs) == 0 && len(urls) > 0 {
			m.ClientURLs = slices.Clone(urls)
		}
		return m
	}
	if healthOK {
		for _, h := range pd.health.v {
			get(h.MemberID, h.Name, h.ClientURLs).Health = new(h.Health)
		}
	}
	if membersOK {
		var leader uint64
		if l := pd.members.v.Leader; l != nil {
			leader = l.MemberID
		}
		for _, m := range pd.members.v.Members {
			get(m.MemberID, m.Name, m.ClientURLs).Leader = new(m.MemberID == leader)
		}
		if healthOK {
			// A member /health lists and /members does not is no leader.
			for _, m := range byID {
				if m.Leader == nil {
					m.Leader = new(false)
				}
			}
		}
	}
	out := make([]Member, 0, len(order))
	for _, id := range order {
		out = append(out, *byID[id])
	}
	slices.SortFunc(out, func(a, b Member) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.MemberID, b.MemberID))
	})
	return out
}

// operators summarises PD's running operators.
func operators(ops []pdapi.Operator) *Operators {
	out := &Operators{Count: len(ops), RegionIDs: []uint64{}}
	seen := map[uint64]bool{}
	for _, op := range ops {
		if op.RegionID == 0 || seen[op.RegionID] {
			continue
		}
		seen[op.RegionID] = true
		out.RegionIDs = append(out.RegionIDs, op.RegionID)
	}
	slices.Sort(out.RegionIDs)
	if len(out.RegionIDs) > MaxOperatorRegions {
		out.RegionIDs = out.RegionIDs[:MaxOperatorRegions]
	}
	return out
}

func firstError(errs []error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return errors.New("no call was made")
}
