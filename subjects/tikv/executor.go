package tikv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/operator-dev/operator/actuators"
	"github.com/operator-dev/operator/schemas"
	"github.com/operator-dev/operator/subjects/tikv/pdapi"
)

// An Executor runs the catalog's actions through PD's HTTP API. The
// [pdapi.Client] fails over across PD members. It is safe for concurrent
// use.
type Executor struct {
	pd *pdapi.Client
}

var _ actuators.Executor = (*Executor)(nil)

// NewExecutor returns an executor over pd.
func NewExecutor(pd *pdapi.Client) (*Executor, error) {
	if pd == nil {
		return nil, errors.New("tikv executor needs a PD client")
	}
	return &Executor{pd: pd}, nil
}

// errRefused marks an action the executor refuses to run: permanent.
var errRefused = errors.New("refused")

// Params of each action, as the catalog's schemas describe them: ids are
// decimal strings.
type (
	storeParams struct {
		StoreID string `json:"store_id"`
	}
	transferLeaderParams struct {
		RegionID  string `json:"region_id"`
		ToStoreID string `json:"to_store_id"`
	}
	transferPeerParams struct {
		RegionID    string `json:"region_id"`
		FromStoreID string `json:"from_store_id"`
		ToStoreID   string `json:"to_store_id"`
	}
	storeLimitParams struct {
		StoreID string  `json:"store_id"`
		Rate    float64 `json:"rate"`
		Type    string  `json:"type"`
	}
)

// Output is what an action did, published as the result's output.
type Output struct {
	StoreID  uint64 `json:"store_id,omitempty"`
	RegionID uint64 `json:"region_id,omitempty"`
	// Changed is false when PD already was as asked and no call changed
	// anything (a repeat, or a goal reached by other means).
	Changed bool `json:"changed"`
	// StateName and LeaderCount describe the store before an eviction.
	StateName   string `json:"state_name,omitempty"`
	LeaderCount *int   `json:"leader_count,omitempty"`
	// FromStoreID and ToStoreID describe a transfer; FromStoreID 0 is a
	// region that had no leader.
	FromStoreID uint64 `json:"from_store_id,omitempty"`
	ToStoreID   uint64 `json:"to_store_id,omitempty"`
	// Rate and LimitType describe a store limit.
	Rate      float64 `json:"rate,omitempty"`
	LimitType string  `json:"limit_type,omitempty"`
}

// Execute runs one attempt of req against PD, sending req.ID as the
// Idempotency-Key of every mutating call.
func (e *Executor) Execute(ctx context.Context, req schemas.ActionRequest) (schemas.ActionResult, error) {
	ctx = pdapi.WithIdempotencyKey(ctx, req.ID)
	var (
		out    Output
		reason string
		err    error
	)
	switch req.Action {
	case "evict_leader", "evict_leader_with_approval":
		var p storeParams
		if err := decodeParams(req.Params, &p); err != nil {
			return schemas.ActionResult{}, err
		}
		out, reason, err = e.evictLeader(ctx, p)
	case "cancel_evict_leader":
		var p storeParams
		if err := decodeParams(req.Params, &p); err != nil {
			return schemas.ActionResult{}, err
		}
		out, reason, err = e.cancelEvictLeader(ctx, p)
	case "transfer_leader":
		var p transferLeaderParams
		if err := decodeParams(req.Params, &p); err != nil {
			return schemas.ActionResult{}, err
		}
		out, reason, err = e.transferLeader(ctx, p)
	case "transfer_peer":
		var p transferPeerParams
		if err := decodeParams(req.Params, &p); err != nil {
			return schemas.ActionResult{}, err
		}
		out, reason, err = e.transferPeer(ctx, p)
	case "set_store_limit":
		var p storeLimitParams
		if err := decodeParams(req.Params, &p); err != nil {
			return schemas.ActionResult{}, err
		}
		out, reason, err = e.setStoreLimit(ctx, p)
	default:
		return schemas.ActionResult{}, fmt.Errorf("tikv executor has no action %q", req.Action)
	}
	if err != nil {
		return schemas.ActionResult{}, err
	}
	b, err := json.Marshal(out)
	if err != nil {
		return schemas.ActionResult{}, fmt.Errorf("encode %s output: %w", req.Action, err)
	}
	return schemas.ActionResult{Output: b, Reason: reason}, nil
}

// evictLeader adds the store to the evict-leader scheduler, unless it is
// held already, after checking that the store exists, is not Tombstone,
// and that another Up store not held by the scheduler can take its
// leaders.
func (e *Executor) evictLeader(ctx context.Context, p storeParams) (Output, string, error) {
	id, err := parseID("store_id", p.StoreID)
	if err != nil {
		return Output{}, "", err
	}
	s, err := e.pd.Store(ctx, id)
	if err != nil {
		return Output{}, "", fmt.Errorf("read store %d: %w", id, err)
	}
	out := Output{StoreID: id, StateName: string(s.State()), LeaderCount: new(s.Status.LeaderCount)}
	if s.State() == pdapi.StoreTombstone {
		return Output{}, "", fmt.Errorf("%w: store %d is Tombstone: it holds no leaders and cannot come back", errRefused, id)
	}
	held, err := e.pd.EvictLeaderStores(ctx)
	if err != nil {
		return Output{}, "", fmt.Errorf("read the evict-leader scheduler: %w", err)
	}
	if slices.Contains(held, id) {
		return out, fmt.Sprintf("store %d is already held by the evict-leader scheduler; nothing to change", id), nil
	}
	up, err := e.upStores(ctx)
	if err != nil {
		return Output{}, "", fmt.Errorf("list Up stores: %w", err)
	}
	takers := 0
	for _, u := range up {
		if u.ID() != id && !slices.Contains(held, u.ID()) {
			takers++
		}
	}
	if takers == 0 {
		return Output{}, "", fmt.Errorf("%w: no other Up store outside the evict-leader scheduler could take store %d's leaders (held: %v)", errRefused, id, held)
	}
	if err := e.pd.AddEvictLeader(ctx, id); err != nil {
		return Output{}, "", fmt.Errorf("add store %d to the evict-leader scheduler: %w", id, err)
	}
	out.Changed = true
	return out, fmt.Sprintf("store %d (%s, %d leaders) added to the evict-leader scheduler; %d other Up store(s) can take its leaders",
		id, s.State(), s.Status.LeaderCount, takers), nil
}

// upStores lists the stores whose state_name is Up. A PD older than v7.5
// has no /stores/check; its /stores lists Up stores too (with Offline
// ones, filtered out here).
func (e *Executor) upStores(ctx context.Context) ([]pdapi.Store, error) {
	stores, err := e.pd.StoresByState(ctx, pdapi.StoreUp)
	var pe *pdapi.Error
	if errors.As(err, &pe) && pe.Status == http.StatusNotFound {
		stores, err = e.pd.Stores(ctx)
	}
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(stores, func(s pdapi.Store) bool { return s.State() != pdapi.StoreUp }), nil
}

// cancelEvictLeader releases the store from the evict-leader scheduler.
func (e *Executor) cancelEvictLeader(ctx context.Context, p storeParams) (Output, string, error) {
	id, err := parseID("store_id", p.StoreID)
	if err != nil {
		return Output{}, "", err
	}
	held, err := e.pd.EvictLeaderStores(ctx)
	if err != nil {
		return Output{}, "", fmt.Errorf("read the evict-leader scheduler: %w", err)
	}
	out := Output{StoreID: id}
	if !slices.Contains(held, id) {
		return out, fmt.Sprintf("store %d is not held by the evict-leader scheduler; nothing to change", id), nil
	}
	if err := e.pd.RemoveEvictLeader(ctx, id); err != nil {
		return Output{}, "", fmt.Errorf("release store %d from the evict-leader scheduler: %w", id, err)
	}
	out.Changed = true
	return out, fmt.Sprintf("store %d released from the evict-leader scheduler; leaders may move back to it", id), nil
}

// transferLeader reads the region first: a leader already on the target
// is done; a target without a voter of the region is refused before PD
// would refuse it.
func (e *Executor) transferLeader(ctx context.Context, p transferLeaderParams) (Output, string, error) {
	rid, err := parseID("region_id", p.RegionID)
	if err != nil {
		return Output{}, "", err
	}
	to, err := parseID("to_store_id", p.ToStoreID)
	if err != nil {
		return Output{}, "", err
	}
	r, err := e.pd.Region(ctx, rid)
	if err != nil {
		return Output{}, "", fmt.Errorf("read region %d: %w", rid, err)
	}
	from, _ := r.LeaderStoreID()
	out := Output{RegionID: rid, FromStoreID: from, ToStoreID: to}
	if from == to {
		return out, fmt.Sprintf("region %d's leader is already on store %d; nothing to change", rid, to), nil
	}
	peer, ok := r.PeerOn(to)
	switch {
	case !ok:
		return Output{}, "", fmt.Errorf("%w: region %d has no peer on store %d (peers on %v)", errRefused, rid, to, peerStores(r))
	case peer.IsLearner || peer.RoleName == "Learner":
		return Output{}, "", fmt.Errorf("%w: region %d's peer on store %d is a learner, which cannot lead", errRefused, rid, to)
	}
	if err := e.pd.AddTransferLeader(ctx, rid, to); err != nil {
		return Output{}, "", fmt.Errorf("transfer region %d's leader to store %d: %w", rid, to, err)
	}
	out.Changed = true
	return out, fmt.Sprintf("PD operator created: region %d's leader from %s to store %d", rid, storeOrNone(from), to), nil
}

// transferPeer reads the region first: a replica already on the target and
// gone from the source is done; a region with no replica on the source, or
// one already on the target, is refused.
func (e *Executor) transferPeer(ctx context.Context, p transferPeerParams) (Output, string, error) {
	rid, err := parseID("region_id", p.RegionID)
	if err != nil {
		return Output{}, "", err
	}
	from, err := parseID("from_store_id", p.FromStoreID)
	if err != nil {
		return Output{}, "", err
	}
	to, err := parseID("to_store_id", p.ToStoreID)
	if err != nil {
		return Output{}, "", err
	}
	if from == to {
		return Output{}, "", fmt.Errorf("%w: from_store_id and to_store_id are both %d", errRefused, from)
	}
	r, err := e.pd.Region(ctx, rid)
	if err != nil {
		return Output{}, "", fmt.Errorf("read region %d: %w", rid, err)
	}
	out := Output{RegionID: rid, FromStoreID: from, ToStoreID: to}
	_, onFrom := r.PeerOn(from)
	_, onTo := r.PeerOn(to)
	switch {
	case onTo && !onFrom:
		return out, fmt.Sprintf("region %d already has its replica on store %d and none on store %d; nothing to change", rid, to, from), nil
	case !onFrom:
		return Output{}, "", fmt.Errorf("%w: region %d has no peer on store %d (peers on %v)", errRefused, rid, from, peerStores(r))
	case onTo:
		return Output{}, "", fmt.Errorf("%w: region %d already has a peer on store %d (peers on %v)", errRefused, rid, to, peerStores(r))
	}
	if err := e.pd.AddTransferPeer(ctx, rid, from, to); err != nil {
		return Output{}, "", fmt.Errorf("transfer region %d's peer from store %d to store %d: %w", rid, from, to, err)
	}
	out.Changed = true
	return out, fmt.Sprintf("PD operator created: region %d's replica from store %d to store %d", rid, from, to), nil
}

// setStoreLimit sets the store's add-peer and/or remove-peer limit.
func (e *Executor) setStoreLimit(ctx context.Context, p storeLimitParams) (Output, string, error) {
	id, err := parseID("store_id", p.StoreID)
	if err != nil {
		return Output{}, "", err
	}
	typ := pdapi.LimitBoth
	switch p.Type {
	case "":
	case string(pdapi.LimitAddPeer), string(pdapi.LimitRemovePeer):
		typ = pdapi.StoreLimitType(p.Type)
	default:
		return Output{}, "", fmt.Errorf("%w: unknown limit type %q", errRefused, p.Type)
	}
	if err := e.pd.SetStoreLimit(ctx, id, p.Rate, typ); err != nil {
		return Output{}, "", fmt.Errorf("set store %d limit: %w", id, err)
	}
	which := "add-peer and remove-peer"
	if typ != pdapi.LimitBoth {
		which = string(typ)
	}
	return Output{StoreID: id, Changed: true, Rate: p.Rate, LimitType: p.Type},
		fmt.Sprintf("store %d %s limit set to %v operations a minute", id, which, p.Rate), nil
}

func peerStores(r pdapi.Region) []uint64 {
	ids := make([]uint64, 0, len(r.Peers))
	for _, p := range r.Peers {
		ids = append(ids, p.StoreID)
	}
	return ids
}

func storeOrNone(id uint64) string {
	if id == 0 {
		return "no leader"
	}
	return "store " + strconv.FormatUint(id, 10)
}

// parseID reads a decimal id param; the catalog's pattern already
// checked it, so a failure is a programming error, reported permanent.
func parseID(name, s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("%w: %s %q is not a positive decimal id", errRefused, name, s)
	}
	return id, nil
}

// decodeParams fills p from params, which the worker validated against the
// catalog; a mismatch here is a programming error, reported permanent.
func decodeParams(params map[string]any, p any) error {
	b, err := json.Marshal(params)
	if err != nil {
		return fmt.Errorf("encode params: %w", err)
	}
	if err := json.Unmarshal(b, p); err != nil {
		return fmt.Errorf("decode params: %w", err)
	}
	return nil
}
