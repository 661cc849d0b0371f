package pdfake

import (
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/operator-dev/operator/subjects/tikv/pdapi"
)

// Defaults for Options, as PD and TiKV ship them.
const (
	DefaultMaxStoreDownTime = 30 * time.Minute // PD max-store-down-time
	DefaultEvictLeaderBatch = 3                // evict-leader scheduler batch
	DefaultMaxReplicas      = 3
	DefaultStoreLimit       = 15.0 // operations per minute, add-peer and remove-peer
)

// PD's and TiKV's fixed thresholds.
const (
	// DisconnectAfter: a store with no heartbeat for longer is
	// Disconnected (PD storeDisconnectDuration).
	DisconnectAfter = 20 * time.Second
	// UnhealthyAfter: PD refuses to move peers to a store with no
	// heartbeat for longer (storeUnhealthyDuration).
	UnhealthyAfter = 10 * time.Minute
	// PeerDownAfter: a peer silent for longer is a down peer (TiKV
	// max-peer-down-duration).
	PeerDownAfter = 10 * time.Minute
	// recordRetention is how long PD answers operator status for a
	// finished operator.
	recordRetention = 10 * time.Minute
)

// DefaultStart is the model's initial time when Options.Start is zero.
var DefaultStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Options configure a Cluster. The zero value is a 3-member PD with PD's
// defaults and an empty cluster (not bootstrapped until a store is added).
type Options struct {
	// Start is the model's initial time.
	Start time.Time
	// MaxStoreDownTime is PD's max-store-down-time.
	MaxStoreDownTime time.Duration
	// Members are the PD member names; the first is the leader. Default
	// pd0, pd1, pd2.
	Members []string
	// EvictLeaderBatch is how many leaders an evict-leader scheduler moves
	// off each of its stores per Step.
	EvictLeaderBatch int
	// MaxReplicas is the replica count regions should have.
	MaxReplicas int
}

// Cluster is the fake cluster: the model and its HTTP API. Build the model
// with the Add and Set methods, advance it with [Cluster.Step], and serve
// it with [Cluster.Handler], [Cluster.Start] or [Cluster.StartFollower].
// All methods are safe for concurrent use. Model-building methods panic on
// programmer errors (an unknown store, a duplicate id).
type Cluster struct {
	mu sync.Mutex

	now              time.Time
	maxStoreDownTime time.Duration
	evictBatch       int
	maxReplicas      int

	stores   map[uint64]*store
	regions  map[uint64]*region
	nextPeer uint64

	evicting  map[uint64]bool      // stores held by the evict-leader scheduler
	operators map[uint64]*operator // running, by region
	records   map[uint64]*operator // finished in the last recordRetention, by region
	limits    map[uint64]pdapi.StoreLimit

	members   []*pdMember
	leader    int // index into members
	clusterID uint64

	p99Ms  map[string]float64 // by status address
	logLag map[string]float64
}

type store struct {
	id            uint64
	address       string
	statusAddress string
	labels        []pdapi.StoreLabel
	capacity      uint64
	available     uint64
	meta          pdapi.MetaState
	started       time.Time
	lastHeartbeat time.Time
	heartbeating  bool
}

type region struct {
	id          uint64
	peers       []pdapi.Peer // ID and StoreID only
	leaderStore uint64       // 0: no leader
	confVer     uint64
	version     uint64
}

type pdMember struct {
	name    string
	id      uint64
	healthy bool
}

// New returns a Cluster with no stores.
func New(opts Options) *Cluster {
	c := &Cluster{
		now:              opts.Start,
		maxStoreDownTime: opts.MaxStoreDownTime,
		evictBatch:       opts.EvictLeaderBatch,
		maxReplicas:      opts.MaxReplicas,
		stores:           map[uint64]*store{},
		regions:          map[uint64]*region{},
		nextPeer:         1000,
		evicting:         map[uint64]bool{},
		operators:        map[uint64]*operator{},
		records:          map[uint64]*operator{},
		limits:           map[uint64]pdapi.StoreLimit{},
		clusterID:        7456049830285843482,
		p99Ms:            map[string]float64{},
		logLag:           map[string]float64{},
	}
	if c.now.IsZero() {
		c.now = DefaultStart
	}
	if c.maxStoreDownTime == 0 {
		c.maxStoreDownTime = DefaultMaxStoreDownTime
	}
	if c.evictBatch == 0 {
		c.evictBatch = DefaultEvictLeaderBatch
	}
	if c.maxReplicas == 0 {
		c.maxReplicas = DefaultMaxReplicas
	}
	names := opts.Members
	if len(names) == 0 {
		names = []string{"pd0", "pd1", "pd2"}
	}
	for _, n := range names {
		h := fnv.New64a()
		_, _ = h.Write([]byte(n))
		c.members = append(c.members, &pdMember{name: n, id: h.Sum64(), healthy: true})
	}
	return c
}

// AddStore adds an Up store that has just heartbeated and keeps
// heartbeating on every Step. address is the gRPC address
// ("tikv0:20160"); statusAddress is the status address Prometheus scrapes
// ("tikv0:20180"), the `instance` label of its metrics. Sizes are bytes.
func (c *Cluster) AddStore(id uint64, address, statusAddress string, capacity, available uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if id == 0 {
		panic("pdfake: store id 0")
	}
	if _, ok := c.stores[id]; ok {
		panic(fmt.Sprintf("pdfake: store %d already exists", id))
	}
	c.stores[id] = &store{
		id: id, address: address, statusAddress: statusAddress,
		capacity: capacity, available: available,
		started: c.now, lastHeartbeat: c.now, heartbeating: true,
	}
	c.limits[id] = pdapi.StoreLimit{AddPeer: DefaultStoreLimit, RemovePeer: DefaultStoreLimit}
}

// SetStoreLabels sets a store's labels (e.g. zone).
func (c *Cluster) SetStoreLabels(id uint64, labels ...pdapi.StoreLabel) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mustStore(id).labels = slices.Clone(labels)
}

// SetStoreSize sets a store's capacity and available bytes, as PD and
// Prometheus report them.
func (c *Cluster) SetStoreSize(id uint64, capacity, available uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.mustStore(id)
	s.capacity, s.available = capacity, available
}

// SetStoreState sets a store's metapb state: Offline starts a drain (the
// store becomes Tombstone at the first Step after it holds no peer),
// Tombstone removes it, Up cancels a drain.
func (c *Cluster) SetStoreState(id uint64, state pdapi.MetaState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mustStore(id).meta = state
}

// Heartbeat records a heartbeat from the store at the given time.
func (c *Cluster) Heartbeat(storeID uint64, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mustStore(storeID).lastHeartbeat = at
}

// StopHeartbeats makes the store stop heartbeating, as a killed or
// partitioned TiKV does: Step no longer refreshes it, so it turns
// Disconnected after 20 s and Down after max-store-down-time, and its
// metrics disappear from the fake Prometheus.
func (c *Cluster) StopHeartbeats(storeID uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mustStore(storeID).heartbeating = false
}

// ResumeHeartbeats makes the store heartbeat again, now and on every Step.
func (c *Cluster) ResumeHeartbeats(storeID uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.mustStore(storeID)
	s.heartbeating = true
	s.lastHeartbeat = c.now
}

// AddRegion adds a region with a peer on each of peerStores and its leader
// on leaderStore (which gets a peer if peerStores lacks one). leaderStore 0
// makes a leaderless region.
func (c *Cluster) AddRegion(id uint64, leaderStore uint64, peerStores ...uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if id == 0 {
		panic("pdfake: region id 0")
	}
	if _, ok := c.regions[id]; ok {
		panic(fmt.Sprintf("pdfake: region %d already exists", id))
	}
	if leaderStore != 0 && !slices.Contains(peerStores, leaderStore) {
		peerStores = append([]uint64{leaderStore}, peerStores...)
	}
	r := &region{id: id, leaderStore: leaderStore, confVer: 5, version: 4}
	for _, sid := range peerStores {
		c.mustStore(sid)
		if _, ok := r.peerOn(sid); ok {
			panic(fmt.Sprintf("pdfake: region %d has two peers on store %d", id, sid))
		}
		r.peers = append(r.peers, pdapi.Peer{ID: c.allocPeer(), StoreID: sid, RoleName: "Voter"})
	}
	c.regions[id] = r
}

// SetRegionLeader moves a region's leader to its peer on storeID; 0 makes
// the region leaderless.
func (c *Cluster) SetRegionLeader(regionID, storeID uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.mustRegion(regionID)
	if storeID != 0 {
		if _, ok := r.peerOn(storeID); !ok {
			panic(fmt.Sprintf("pdfake: region %d has no peer on store %d", regionID, storeID))
		}
	}
	r.leaderStore = storeID
}

// SetMaxStoreDownTime sets PD's max-store-down-time.
func (c *Cluster) SetMaxStoreDownTime(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.maxStoreDownTime = d
}

// SetMemberHealth marks a PD member healthy or not in GET /health.
func (c *Cluster) SetMemberHealth(name string, healthy bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.members[c.mustMember(name)].healthy = healthy
}

// SetPDLeader makes the named member PD's leader in GET /members.
func (c *Cluster) SetPDLeader(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.leader = c.mustMember(name)
}

// Step advances the model to now and runs what happens meanwhile, in
// order: live stores heartbeat at now; every operator created through the
// API so far applies (transfer-leader moves the leader, transfer-peer
// moves the peer, and its leader first if needed) and is recorded as
// finished; each store held by the evict-leader scheduler loses up to
// EvictLeaderBatch leaders to peers on live stores; Offline stores with no
// peers become Tombstone; finished operators older than 10 minutes are
// forgotten. now must not be before the model's time.
func (c *Cluster) Step(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Before(c.now) {
		panic(fmt.Sprintf("pdfake: Step(%v) is before the model time %v", now, c.now))
	}
	c.now = now
	for _, s := range c.stores {
		if s.heartbeating && s.meta != pdapi.MetaTombstone {
			s.lastHeartbeat = now
		}
	}
	for _, rid := range slices.Sorted(maps.Keys(c.operators)) {
		op := c.operators[rid]
		op.apply(c)
		op.finished = now
		c.records[rid] = op
		delete(c.operators, rid)
	}
	for _, sid := range slices.Sorted(maps.Keys(c.evicting)) {
		c.evictLeaders(sid)
	}
	for _, s := range c.stores {
		if s.meta == pdapi.MetaOffline && c.peerCount(s.id) == 0 {
			s.meta = pdapi.MetaTombstone
		}
	}
	for rid, op := range c.records {
		if now.Sub(op.finished) > recordRetention {
			delete(c.records, rid)
		}
	}
}

// evictLeaders moves up to evictBatch leaders off the store, each to the
// first peer on a store that can take a leader.
func (c *Cluster) evictLeaders(storeID uint64) {
	moved := 0
	for _, rid := range slices.Sorted(maps.Keys(c.regions)) {
		if moved == c.evictBatch {
			return
		}
		r := c.regions[rid]
		if r.leaderStore != storeID {
			continue
		}
		for _, p := range r.peers {
			if p.StoreID != storeID && c.canLead(p.StoreID) {
				r.leaderStore = p.StoreID
				moved++
				break
			}
		}
	}
}

// canLead reports whether a store can take a leader: Up, heartbeating
// recently and not held by the evict-leader scheduler.
func (c *Cluster) canLead(storeID uint64) bool {
	s, ok := c.stores[storeID]
	return ok && c.stateName(s) == pdapi.StoreUp && !c.evicting[storeID]
}

// Now returns the model's time.
func (c *Cluster) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// StoreState returns the store's state_name at the model's time.
func (c *Cluster) StoreState(id uint64) pdapi.StoreState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stateName(c.mustStore(id))
}

// LeaderCount returns how many region leaders the store holds.
func (c *Cluster) LeaderCount(storeID uint64) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leaderCount(storeID)
}

// LeaderStore returns the store holding the region's leader, 0 if none.
func (c *Cluster) LeaderStore(regionID uint64) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mustRegion(regionID).leaderStore
}

// RegionStores returns the stores holding the region's peers, in peer
// order.
func (c *Cluster) RegionStores(regionID uint64) []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []uint64
	for _, p := range c.mustRegion(regionID).peers {
		ids = append(ids, p.StoreID)
	}
	return ids
}

// EvictedStores returns the stores the evict-leader scheduler holds, in
// ascending order.
func (c *Cluster) EvictedStores() []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Sorted(maps.Keys(c.evicting))
}

// stateName derives state_name as PD's BuildStoreInfo does.
func (c *Cluster) stateName(s *store) pdapi.StoreState {
	switch s.meta {
	case pdapi.MetaOffline:
		return pdapi.StoreOffline
	case pdapi.MetaTombstone:
		return pdapi.StoreTombstone
	}
	switch age := c.now.Sub(s.lastHeartbeat); {
	case age > c.maxStoreDownTime:
		return pdapi.StoreDown
	case age > DisconnectAfter:
		return pdapi.StoreDisconnected
	}
	return pdapi.StoreUp
}

func (c *Cluster) heartbeatAge(storeID uint64) time.Duration {
	s, ok := c.stores[storeID]
	if !ok {
		return math.MaxInt64
	}
	return c.now.Sub(s.lastHeartbeat)
}

func (c *Cluster) leaderCount(storeID uint64) int {
	n := 0
	for _, r := range c.regions {
		if r.leaderStore == storeID {
			n++
		}
	}
	return n
}

func (c *Cluster) peerCount(storeID uint64) int {
	n := 0
	for _, r := range c.regions {
		if _, ok := r.peerOn(storeID); ok {
			n++
		}
	}
	return n
}

func (c *Cluster) allocPeer() uint64 {
	c.nextPeer++
	return c.nextPeer
}

func (c *Cluster) mustStore(id uint64) *store {
	s, ok := c.stores[id]
	if !ok {
		panic(fmt.Sprintf("pdfake: no store %d", id))
	}
	return s
}

func (c *Cluster) mustRegion(id uint64) *region {
	r, ok := c.regions[id]
	if !ok {
		panic(fmt.Sprintf("pdfake: no region %d", id))
	}
	return r
}

func (c *Cluster) mustMember(name string) int {
	for i, m := range c.members {
		if m.name == name {
			return i
		}
	}
	panic(fmt.Sprintf("pdfake: no PD member %q", name))
}

func (r *region) peerOn(storeID uint64) (pdapi.Peer, bool) {
	for _, p := range r.peers {
		if p.StoreID == storeID {
			return p, true
		}
	}
	return pdapi.Peer{}, false
}
