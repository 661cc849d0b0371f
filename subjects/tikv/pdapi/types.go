package pdapi

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// StoreState is a store's state_name as PD reports it. PD derives it in
// BuildStoreInfo (pkg/response/store.go): a store whose metapb state is Up
// becomes Disconnected when its last heartbeat is more than 20 s old and
// Down when it is more than max-store-down-time old (30m by default); Offline
// and Tombstone are set by an operator and never change by themselves, so an
// Offline store that stops heartbeating stays Offline. Unknown values from a
// newer PD are kept as they are.
type StoreState string

// The store states PD reports.
const (
	// StoreUp is a live store.
	StoreUp StoreState = "Up"
	// StoreDisconnected has not heartbeated for more than 20 s.
	StoreDisconnected StoreState = "Disconnected"
	// StoreDown has not heartbeated for more than max-store-down-time.
	StoreDown StoreState = "Down"
	// StoreOffline is being drained (a deliberate state, not a fault).
	StoreOffline StoreState = "Offline"
	// StoreTombstone has been removed; GET /stores hides it.
	StoreTombstone StoreState = "Tombstone"
)

// Known reports whether s is one of the five states above.
func (s StoreState) Known() bool {
	switch s {
	case StoreUp, StoreDisconnected, StoreDown, StoreOffline, StoreTombstone:
		return true
	}
	return false
}

// Store is one entry of GET /stores, or the answer of GET /store/{id}:
// PD's StoreInfo, {"store": MetaStore, "status": StoreStatus}.
type Store struct {
	Meta   StoreMeta   `json:"store"`
	Status StoreStatus `json:"status"`
}

// ID returns the store id.
func (s Store) ID() uint64 { return s.Meta.ID }

// State returns the store's state_name.
func (s Store) State() StoreState { return s.Meta.StateName }

// LastHeartbeat returns the time of the store's last heartbeat, or the
// zero time if PD has none (last_heartbeat is omitted).
func (s Store) LastHeartbeat() time.Time {
	if s.Meta.LastHeartbeat == 0 {
		return time.Time{}
	}
	return time.Unix(0, s.Meta.LastHeartbeat)
}

// HeartbeatAge returns now minus the last heartbeat, and false if PD has no
// heartbeat for the store. now is the caller's clock (an observer's poll
// time); PD's and the caller's clocks may differ slightly, so a small
// negative age is returned as 0.
func (s Store) HeartbeatAge(now time.Time) (time.Duration, bool) {
	hb := s.LastHeartbeat()
	if hb.IsZero() {
		return 0, false
	}
	return max(now.Sub(hb), 0), true
}

// StoreMeta is PD's MetaStore: metapb.Store plus state_name. Every metapb
// field is omitempty in PD's answer, so a zero value means "absent".
type StoreMeta struct {
	ID          uint64       `json:"id,omitempty"`
	Address     string       `json:"address,omitempty"` // gRPC, "host:20160"
	State       MetaState    `json:"state,omitempty"`   // 0 Up (omitted), 1 Offline, 2 Tombstone
	Labels      []StoreLabel `json:"labels,omitempty"`
	Version     string       `json:"version,omitempty"`
	PeerAddress string       `json:"peer_address,omitempty"`
	// StatusAddress ("host:20180") is the HTTP status port that
	// Prometheus scrapes, so it is the `instance` label of every TiKV
	// metric. Join metrics to stores on it, never on Address.
	StatusAddress  string `json:"status_address,omitempty"`
	GitHash        string `json:"git_hash,omitempty"`
	StartTimestamp int64  `json:"start_timestamp,omitempty"` // unix seconds
	DeployPath     string `json:"deploy_path,omitempty"`
	// LastHeartbeat is unix nanoseconds; see [Store.LastHeartbeat].
	LastHeartbeat       int64      `json:"last_heartbeat,omitempty"`
	PhysicallyDestroyed bool       `json:"physically_destroyed,omitempty"`
	NodeState           int        `json:"node_state,omitempty"` // 1 Serving, 2 Removing, 3 Removed
	StateName           StoreState `json:"state_name"`
}

// MetaState is metapb.StoreState, the state an operator sets; state_name
// adds Disconnected and Down on top of Up.
type MetaState int

// The metapb store states.
const (
	MetaUp        MetaState = 0
	MetaOffline   MetaState = 1
	MetaTombstone MetaState = 2
)

// StoreLabel is a store label such as zone=z1.
type StoreLabel struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// StoreStatus is PD's StoreStatus. Sizes are humanised in PD's answer and
// parsed here to bytes; region_size and leader_size are MiB.
type StoreStatus struct {
	Capacity           ByteSize   `json:"capacity"`
	Available          ByteSize   `json:"available"`
	UsedSize           ByteSize   `json:"used_size"`
	LeaderCount        int        `json:"leader_count"`
	LeaderWeight       float64    `json:"leader_weight"`
	LeaderScore        float64    `json:"leader_score"`
	LeaderSize         int64      `json:"leader_size"`
	RegionCount        int        `json:"region_count"`
	RegionWeight       float64    `json:"region_weight"`
	RegionScore        float64    `json:"region_score"`
	RegionSize         int64      `json:"region_size"`
	LearnerCount       int        `json:"learner_count,omitempty"`
	WitnessCount       int        `json:"witness_count,omitempty"`
	PendingPeerCount   int        `json:"pending_peer_count,omitempty"`
	SlowScore          uint64     `json:"slow_score,omitempty"`
	SlowTrend          *SlowTrend `json:"slow_trend,omitempty"`
	SendingSnapCount   uint32     `json:"sending_snap_count,omitempty"`
	ReceivingSnapCount uint32     `json:"receiving_snap_count,omitempty"`
	IsBusy             bool       `json:"is_busy,omitempty"`
	StartTS            *time.Time `json:"start_ts,omitempty"`
	LastHeartbeatTS    *time.Time `json:"last_heartbeat_ts,omitempty"`
	Uptime             *Duration  `json:"uptime,omitempty"`
	// PauseLeaderTransferIn is set while an evict-leader scheduler holds
	// the store (no leader may move in).
	PauseLeaderTransferIn  bool `json:"pause_leader_transfer_in,omitempty"`
	PauseLeaderTransferOut bool `json:"pause_leader_transfer_out,omitempty"`
}

// SlowTrend is PD's slow-trend view of a store.
type SlowTrend struct {
	CauseValue  float64 `json:"cause_value"`
	CauseRate   float64 `json:"cause_rate"`
	ResultValue float64 `json:"result_value"`
	ResultRate  float64 `json:"result_rate"`
}

// Duration is a time.Duration that PD writes as a Go duration string
// ("30m0s", "59m55.123456789s").
type Duration struct {
	time.Duration
}

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(d.Duration.String())
}

// UnmarshalJSON reads a Go duration string; null leaves d unchanged.
func (d *Duration) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("pdapi: duration: %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("pdapi: duration: %w", err)
	}
	d.Duration = v
	return nil
}

// storesResponse is the answer of GET /stores and /stores/check.
type storesResponse struct {
	Count  int     `json:"count"`
	Stores []Store `json:"stores"`
}

// Peer is PD's MetaPeer. A leaderless region's leader is a Peer with only
// role_name "" set: ID and StoreID are 0.
type Peer struct {
	RoleName  string `json:"role_name"` // Voter, Learner, IncomingVoter, DemotingVoter
	IsLearner bool   `json:"is_learner,omitempty"`
	ID        uint64 `json:"id,omitempty"`
	StoreID   uint64 `json:"store_id,omitempty"`
	Role      int    `json:"role,omitempty"`
	IsWitness bool   `json:"is_witness,omitempty"`
}

// DownPeer is a peer that has not answered its leader for DownSeconds.
type DownPeer struct {
	Peer        Peer   `json:"peer"`
	DownSeconds uint64 `json:"down_seconds"`
}

// RegionEpoch is a region's configuration and split/merge version.
type RegionEpoch struct {
	ConfVer uint64 `json:"conf_ver,omitempty"`
	Version uint64 `json:"version,omitempty"`
}

// Region is PD's RegionInfo (GET /region/id/{id} and the items of the
// regions/check lists). Keys are upper-case hex; "" is unbounded.
type Region struct {
	ID                        uint64       `json:"id"`
	StartKey                  string       `json:"start_key"`
	EndKey                    string       `json:"end_key"`
	Epoch                     *RegionEpoch `json:"epoch,omitempty"`
	Peers                     []Peer       `json:"peers,omitempty"`
	Leader                    Peer         `json:"leader"`
	DownPeers                 []DownPeer   `json:"down_peers,omitempty"`
	PendingPeers              []Peer       `json:"pending_peers,omitempty"`
	CPUUsage                  uint64       `json:"cpu_usage"`
	WrittenBytes              uint64       `json:"written_bytes"`
	ReadBytes                 uint64       `json:"read_bytes"`
	WrittenKeys               uint64       `json:"written_keys"`
	ReadKeys                  uint64       `json:"read_keys"`
	ApproximateSize           int64        `json:"approximate_size"` // MiB
	ApproximateKeys           int64        `json:"approximate_keys"`
	ApproximateKvSize         int64        `json:"approximate_kv_size"`
	ApproximateColumnarKvSize int64        `json:"approximate_columnar_kv_size"`
}

// HasLeader reports whether the region has a leader. PD always sends a
// leader object; a leaderless region's has no id and no store_id.
func (r Region) HasLeader() bool { return r.Leader.ID != 0 && r.Leader.StoreID != 0 }

// LeaderStoreID returns the store holding the region's leader, and false if
// the region has none.
func (r Region) LeaderStoreID() (uint64, bool) {
	if !r.HasLeader() {
		return 0, false
	}
	return r.Leader.StoreID, true
}

// PeerOn returns the region's peer on the store, if any.
func (r Region) PeerOn(storeID uint64) (Peer, bool) {
	for _, p := range r.Peers {
		if p.StoreID == storeID {
			return p, true
		}
	}
	return Peer{}, false
}

// Regions is the answer of the regions/check endpoints.
type Regions struct {
	Count   int      `json:"count"`
	Regions []Region `json:"regions"`
}

// IDs returns the ids of at most n regions, in PD's order; n <= 0 means all.
func (r Regions) IDs(n int) []uint64 {
	if n <= 0 || n > len(r.Regions) {
		n = len(r.Regions)
	}
	ids := make([]uint64, 0, n)
	for _, reg := range r.Regions[:n] {
		ids = append(ids, reg.ID)
	}
	return ids
}

// RegionCheck names a regions/check list.
type RegionCheck string

// The region checks PD offers that the observer uses.
const (
	CheckDownPeer    RegionCheck = "down-peer"
	CheckMissPeer    RegionCheck = "miss-peer"
	CheckPendingPeer RegionCheck = "pending-peer"
	CheckOfflinePeer RegionCheck = "offline-peer"
	CheckExtraPeer   RegionCheck = "extra-peer"
	CheckLearnerPeer RegionCheck = "learner-peer"
	CheckEmptyRegion RegionCheck = "empty-region"
)

// MemberHealth is one entry of GET /health. The endpoint answers 200 even
// when a member is unhealthy, so look at Health.
type MemberHealth struct {
	Name       string   `json:"name"`
	MemberID   uint64   `json:"member_id"`
	ClientURLs []string `json:"client_urls"`
	Health     bool     `json:"health"`
}

// Members is the answer of GET /members (pdpb.GetMembersResponse).
type Members struct {
	Header     *ResponseHeader `json:"header,omitempty"`
	Members    []Member        `json:"members,omitempty"`
	Leader     *Member         `json:"leader,omitempty"`
	EtcdLeader *Member         `json:"etcd_leader,omitempty"`
}

// ResponseHeader is pdpb.ResponseHeader.
type ResponseHeader struct {
	ClusterID uint64 `json:"cluster_id,omitempty"`
}

// Member is a PD member (pdpb.Member).
type Member struct {
	Name           string   `json:"name,omitempty"`
	MemberID       uint64   `json:"member_id,omitempty"`
	PeerURLs       []string `json:"peer_urls,omitempty"`
	ClientURLs     []string `json:"client_urls,omitempty"`
	LeaderPriority int32    `json:"leader_priority,omitempty"`
	DeployPath     string   `json:"deploy_path,omitempty"`
	BinaryVersion  string   `json:"binary_version,omitempty"`
	GitHash        string   `json:"git_hash,omitempty"`
	DcLocation     string   `json:"dc_location,omitempty"`
}

// ScheduleConfig holds the fields of GET /config/schedule that matter to
// an operator of the cluster; PD sends many more, which are ignored.
type ScheduleConfig struct {
	MaxStoreDownTime       Duration `json:"max-store-down-time"`
	LeaderScheduleLimit    uint64   `json:"leader-schedule-limit"`
	RegionScheduleLimit    uint64   `json:"region-schedule-limit"`
	ReplicaScheduleLimit   uint64   `json:"replica-schedule-limit"`
	MergeScheduleLimit     uint64   `json:"merge-schedule-limit"`
	HotRegionScheduleLimit uint64   `json:"hot-region-schedule-limit"`
	MaxPendingPeerCount    uint64   `json:"max-pending-peer-count"`
	MaxSnapshotCount       uint64   `json:"max-snapshot-count"`
	LowSpaceRatio          float64  `json:"low-space-ratio"`
	HighSpaceRatio         float64  `json:"high-space-ratio"`
	StoreLimitVersion      string   `json:"store-limit-version,omitempty"`
	// PD writes these booleans as JSON strings ("true").
	EnableRemoveDownReplica     FlexBool `json:"enable-remove-down-replica"`
	EnableReplaceOfflineReplica FlexBool `json:"enable-replace-offline-replica"`
	EnableMakeUpReplica         FlexBool `json:"enable-make-up-replica"`
	HaltScheduling              FlexBool `json:"halt-scheduling,omitempty"`
}

// FlexBool is a boolean that PD writes as a JSON string ("true", because of
// `json:",string"` tags) and older versions as a JSON bool; both decode. It
// encodes as PD does, as a string.
type FlexBool bool

// MarshalJSON writes the boolean as a JSON string, as PD does.
func (b FlexBool) MarshalJSON() ([]byte, error) {
	if b {
		return []byte(`"true"`), nil
	}
	return []byte(`"false"`), nil
}

// UnmarshalJSON reads "true"/"false" or true/false.
func (b *FlexBool) UnmarshalJSON(data []byte) error {
	switch strings.Trim(string(data), `"`) {
	case "true":
		*b = true
	case "false", "null", "":
		*b = false
	default:
		return fmt.Errorf("pdapi: invalid boolean %s", data)
	}
	return nil
}

// Scheduler names used with [Client.AddEvictLeader].
const (
	// EvictLeaderScheduler is one scheduler holding a set of stores; PD
	// lists it once in GET /schedulers however many stores it holds.
	EvictLeaderScheduler = "evict-leader-scheduler"
)

// StoreLimitType says which store limit [Client.SetStoreLimit] sets.
type StoreLimitType string

// The store limit types; LimitBoth sends no type, which PD applies to both.
const (
	LimitBoth       StoreLimitType = ""
	LimitAddPeer    StoreLimitType = "add-peer"
	LimitRemovePeer StoreLimitType = "remove-peer"
)

// StoreLimit is a store's scheduling rate limits, in operations per minute.
type StoreLimit struct {
	AddPeer    float64 `json:"add-peer"`
	RemovePeer float64 `json:"remove-peer"`
}

// OperatorStatus is the status of an operator in GET /operators?object=1
// (pkg/schedule/operator/status.go).
type OperatorStatus int

// The operator statuses; SUCCESS and after are final.
const (
	OpCreated OperatorStatus = iota
	OpStarted
	OpSuccess
	OpCanceled
	OpReplaced
	OpExpired
	OpTimeout
)

var operatorStatusNames = [...]string{"CREATED", "STARTED", "SUCCESS", "CANCELED", "REPLACED", "EXPIRED", "TIMEOUT"}

// String returns the status name, e.g. "STARTED".
func (s OperatorStatus) String() string {
	if s >= 0 && int(s) < len(operatorStatusNames) {
		return operatorStatusNames[s]
	}
	return fmt.Sprintf("OperatorStatus(%d)", int(s))
}

// Operator is a pending operator as GET /operators?object=1 lists it. PD
// versions without ?object list plain strings; for those only Desc (the
// whole string) and RegionID are set.
type Operator struct {
	Desc        string         `json:"desc"`
	Brief       string         `json:"brief"`
	RegionID    uint64         `json:"region_id"`
	RegionEpoch *RegionEpoch   `json:"region_epoch,omitempty"`
	Kind        uint32         `json:"kind"` // bit set; bit positions differ across PD versions
	Timeout     string         `json:"timeout"`
	Status      OperatorStatus `json:"status"`
}

// RegionOperatorState is the status word in GET /operators/{region_id}
// (pdpb.OperatorStatus).
type RegionOperatorState string

// The per-region operator states.
const (
	RegionOpSuccess RegionOperatorState = "SUCCESS"
	RegionOpTimeout RegionOperatorState = "TIMEOUT"
	RegionOpCancel  RegionOperatorState = "CANCEL"
	RegionOpReplace RegionOperatorState = "REPLACE"
	RegionOpRunning RegionOperatorState = "RUNNING"
)

// RegionOperator is the answer of GET /operators/{region_id}, which PD sends
// as one string: "status: RUNNING, operator: admin-transfer-leader {...}".
// PD keeps finished operators for 10 minutes. Confirm an operator's effect
// by re-reading the region, not by parsing Operator.
type RegionOperator struct {
	State    RegionOperatorState
	Operator string
	Raw      string
}
