package tikv

import (
	"encoding/json"
	"strconv"
)

// State is one observation's state, as schemas/tikv.state.v1.json describes
// it. A nil slice or pointer field is left out of the JSON: that source could
// not be read in this poll. An empty slice is a source that was read and
// holds nothing.
type State struct {
	PD         PDState    `json:"pd"`
	Stores     []Store    `json:"stores,omitzero"`
	Regions    Regions    `json:"regions"`
	Members    []Member   `json:"members,omitzero"`
	Schedule   *Schedule  `json:"schedule,omitzero"`
	Operators  *Operators `json:"operators,omitzero"`
	Prometheus PromState  `json:"prometheus"`
}

// PDState says whether PD answered and which URL did.
type PDState struct {
	// Reachable is true when some PD URL answered at least one call.
	Reachable bool `json:"reachable"`
	// URL is the PD URL the client used last: the one that answered.
	URL string `json:"url"`
}

// Store is one TiKV store.
type Store struct {
	ID            uint64 `json:"id"`
	Address       string `json:"address"`
	StatusAddress string `json:"status_address"`
	// StateName is PD's state_name (Up, Disconnected, Down, Offline,
	// Tombstone), or Unknown for a value the schema does not list.
	StateName string `json:"state_name"`
	// LastHeartbeatAgeS is the poll time minus PD's last_heartbeat, in
	// seconds; null when PD has none.
	LastHeartbeatAgeS *float64 `json:"last_heartbeat_age_s"`
	// CapacityBytes and AvailableBytes come from Prometheus when it has both
	// for the store (exact bytes), else from PD (humanised, about 4
	// significant digits). Both are what TiKV reports in its store
	// heartbeat, so the two sources agree up to PD's rounding.
	CapacityBytes  uint64 `json:"capacity_bytes"`
	AvailableBytes uint64 `json:"available_bytes"`
	LeaderCount    int    `json:"leader_count"`
	RegionCount    int    `json:"region_count"`
	// P99MS is the gRPC p99 in milliseconds and RaftLogLag the p99 raft log
	// lag in entries, both from Prometheus.
	P99MS      Measurement `json:"p99_ms,omitzero"`
	RaftLogLag Measurement `json:"raft_log_lag,omitzero"`
	// EvictLeader is whether an evict-leader scheduler holds the store; nil
	// when the scheduler's store list could not be read.
	EvictLeader *bool `json:"evict_leader,omitzero"`
	// AddPeerLimit and RemovePeerLimit are PD's store limits in operations
	// per minute; nil when they could not be read.
	AddPeerLimit    *float64 `json:"add_peer_limit,omitzero"`
	RemovePeerLimit *float64 `json:"remove_peer_limit,omitzero"`
}

// Regions summarises PD's regions/check lists. A nil field could not be
// read.
type Regions struct {
	Count       *int         `json:"count,omitzero"`
	DownPeer    *RegionCheck `json:"down_peer,omitzero"`
	MissPeer    *RegionCheck `json:"miss_peer,omitzero"`
	PendingPeer *RegionCheck `json:"pending_peer,omitzero"`
	OfflinePeer *RegionCheck `json:"offline_peer,omitzero"`
	// Leaderless counts the regions without a leader among those the four
	// checks listed; it is set only when all four were read.
	Leaderless *RegionCheck `json:"leaderless,omitzero"`
}

// MaxSample is the most region ids a RegionCheck carries (the schema's
// maxItems).
const MaxSample = 10

// RegionCheck is one regions/check list: how many regions PD listed and the
// ids of the first few.
type RegionCheck struct {
	Count  int      `json:"count"`
	Sample []uint64 `json:"sample"`
}

// Member is one PD member.
type Member struct {
	Name       string   `json:"name"`
	MemberID   string   `json:"member_id"`
	ClientURLs []string `json:"client_urls,omitempty"`
	// Health is from GET /health and Leader from GET /members; nil when
	// that endpoint could not be read.
	Health *bool `json:"health,omitzero"`
	Leader *bool `json:"leader,omitzero"`
}

// Schedule is PD's schedule configuration.
type Schedule struct {
	MaxStoreDownTimeS   float64 `json:"max_store_down_time_s"`
	LeaderScheduleLimit uint64  `json:"leader_schedule_limit"`
	RegionScheduleLimit uint64  `json:"region_schedule_limit"`
	// Schedulers are the enabled schedulers; nil when they could not be
	// read.
	Schedulers []string `json:"schedulers,omitzero"`
}

// MaxOperatorRegions is the most region ids Operators carries (the schema's
// maxItems).
const MaxOperatorRegions = 1000

// Operators are the operators PD is running.
type Operators struct {
	Count int `json:"count"`
	// RegionIDs are the regions with a running operator, ascending, at
	// most MaxOperatorRegions of them.
	RegionIDs []uint64 `json:"region_ids"`
}

// PromState says whether Prometheus is configured and answered.
type PromState struct {
	Configured bool `json:"configured"`
	// Reachable is true when at least one query answered.
	Reachable bool `json:"reachable"`
}

// Measurement is a metric value with three states: not read (the zero
// value, left out of the JSON with omitzero), read with no data (null), and
// a number.
type Measurement struct {
	value float64
	state measurementState
}

type measurementState uint8

const (
	notRead measurementState = iota
	noData
	hasValue
)

// NoData is a metric that was read and has no value (no series, or NaN).
func NoData() Measurement { return Measurement{state: noData} }

// Value is a metric read as v.
func Value(v float64) Measurement { return Measurement{value: v, state: hasValue} }

// IsZero reports whether the metric was not read, so omitzero leaves it
// out.
func (m Measurement) IsZero() bool { return m.state == notRead }

// Float returns the value and whether there is one.
func (m Measurement) Float() (float64, bool) { return m.value, m.state == hasValue }

// MarshalJSON writes the number, or null when there is none.
func (m Measurement) MarshalJSON() ([]byte, error) {
	if m.state != hasValue {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, m.value, 'f', -1, 64), nil
}

// UnmarshalJSON reads a number or null.
func (m *Measurement) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*m = NoData()
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*m = Value(v)
	return nil
}
