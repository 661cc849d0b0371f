package pdfake

import (
	"fmt"
	"slices"
	"time"

	"github.com/operator-dev/operator/subjects/tikv/pdapi"
)

// Operator kind bits (pkg/schedule/operator/kind.go).
const (
	kindAdmin  = 1 << 0
	kindRegion = 1 << 7
	kindLeader = 1 << 8
)

// operator is an admin operator created through POST /operators.
type operator struct {
	kind      string // "transfer-leader" or "transfer-peer"
	regionID  uint64
	from, to  uint64 // stores
	confVer   uint64 // region epoch when created
	version   uint64
	created   time.Time
	finished  time.Time
	movesLead bool // transfer-peer whose source holds the leader
}

// newTransferLeader validates a transfer-leader as PD's handler and builder
// do and returns the operator, or PD's status and message.
func (c *Cluster) newTransferLeader(regionID, toStore uint64) (*operator, int, string) {
	r, ok := c.regions[regionID]
	if !ok {
		return nil, 500, fmt.Sprintf("[PD:region:ErrRegionNotFound]region %d not found", regionID)
	}
	if _, ok := r.peerOn(toStore); !ok {
		return nil, 500, fmt.Sprintf("region has no voter in store %d", toStore)
	}
	if c.peerUnhealthy(r, toStore) {
		return nil, 500, fmt.Sprintf("cannot transfer leader to %d: unhealthy", toStore)
	}
	if r.leaderStore == toStore {
		return nil, 500, "no operator step is built"
	}
	if _, busy := c.operators[regionID]; busy {
		return nil, 500, "[PD:operator:ErrAddOperator]failed to add operator, maybe already have one"
	}
	return &operator{kind: "transfer-leader", regionID: regionID, from: r.leaderStore, to: toStore,
		confVer: r.confVer, version: r.version, created: c.now}, 200, ""
}

// newTransferPeer validates a transfer-peer as PD's handler
// (checkStoreState) and builder do.
func (c *Cluster) newTransferPeer(regionID, fromStore, toStore uint64) (*operator, int, string) {
	r, ok := c.regions[regionID]
	if !ok {
		return nil, 500, fmt.Sprintf("[PD:region:ErrRegionNotFound]region %d not found", regionID)
	}
	if _, ok := r.peerOn(fromStore); !ok {
		return nil, 500, fmt.Sprintf("region has no peer in store %d", fromStore)
	}
	to, ok := c.stores[toStore]
	switch {
	case !ok:
		return nil, 500, fmt.Sprintf("[PD:core:ErrStoreNotFound]store %d not found", toStore)
	case to.meta == pdapi.MetaTombstone:
		return nil, 500, fmt.Sprintf("[PD:core:ErrStoreRemoved]store %d has been removed", toStore)
	case c.heartbeatAge(toStore) > UnhealthyAfter:
		return nil, 500, fmt.Sprintf("[PD:core:ErrStoreUnhealthy]store %d is unhealthy", toStore)
	}
	if old, ok := r.peerOn(toStore); ok {
		return nil, 500, fmt.Sprintf("cannot add peer store_id:%d : already have peer id:%d store_id:%d ", toStore, old.ID, old.StoreID)
	}
	if _, busy := c.operators[regionID]; busy {
		return nil, 500, "[PD:operator:ErrAddOperator]failed to add operator, maybe already have one"
	}
	return &operator{kind: "transfer-peer", regionID: regionID, from: fromStore, to: toStore,
		confVer: r.confVer, version: r.version, created: c.now, movesLead: r.leaderStore == fromStore}, 200, ""
}

// peerUnhealthy reports whether the region's peer on the store is down or
// pending, which makes PD's builder refuse it as a new leader.
func (c *Cluster) peerUnhealthy(r *region, storeID uint64) bool {
	return storeID != r.leaderStore && c.heartbeatAge(storeID) > DisconnectAfter
}

// apply makes the operator's change to the model. A region changed or
// removed since the operator was created is left alone (PD would cancel
// the operator on an epoch mismatch).
func (op *operator) apply(c *Cluster) {
	r, ok := c.regions[op.regionID]
	if !ok {
		return
	}
	switch op.kind {
	case "transfer-leader":
		if _, ok := r.peerOn(op.to); ok {
			r.leaderStore = op.to
		}
	case "transfer-peer":
		if _, ok := r.peerOn(op.to); ok {
			return
		}
		r.peers = append(r.peers, pdapi.Peer{ID: c.allocPeer(), StoreID: op.to, RoleName: "Voter"})
		if r.leaderStore == op.from {
			r.leaderStore = op.to
		}
		r.peers = slices.DeleteFunc(r.peers, func(p pdapi.Peer) bool { return p.StoreID == op.from })
		r.confVer += 2 // add learner + promote/remove
	}
}

// kindBits returns the operator kind as PD's bit set.
func (op *operator) kindBits() uint32 {
	if op.kind == "transfer-leader" {
		return kindAdmin | kindLeader
	}
	if op.movesLead {
		return kindAdmin | kindRegion | kindLeader
	}
	return kindAdmin | kindRegion
}

func (op *operator) desc() string {
	if op.kind == "transfer-leader" {
		return "admin-transfer-leader"
	}
	return "admin-move-peer"
}

func (op *operator) brief() string {
	if op.kind == "transfer-leader" {
		return fmt.Sprintf("transfer leader: store %d to %d", op.from, op.to)
	}
	return fmt.Sprintf("mv peer: store [%d] to [%d]", op.from, op.to)
}

func (op *operator) timeout() string {
	if op.kind == "transfer-leader" {
		return "1m0s"
	}
	return "10m0s"
}

// String renders the operator as PD's Operator.String does.
func (op *operator) String() string {
	kind := "admin,leader"
	steps, nsteps := fmt.Sprintf("0:{transfer leader from store %d to store %d}", op.from, op.to), 1
	if op.kind == "transfer-peer" {
		nsteps = 3
		kind = "admin,region"
		if op.movesLead {
			kind = "admin,region,leader"
		}
		steps = fmt.Sprintf("0:{add learner peer on store %d}, 1:{promote learner peer on store %d to voter}, 2:{remove peer on store %d}",
			op.to, op.to, op.from)
	}
	step := 0
	if !op.finished.IsZero() {
		step = nsteps
	}
	s := fmt.Sprintf("%s {%s} (kind:%s, region:%d(%d, %d), createAt:%s, startAt:%s, currentStep:%d, size:1, steps:[%s], timeout:[%s])",
		op.desc(), op.brief(), kind, op.regionID, op.version, op.confVer, op.created, op.created, step, steps, op.timeout())
	if !op.finished.IsZero() {
		s += " finished"
	}
	return s
}

func (op *operator) object() pdapi.Operator {
	return pdapi.Operator{
		Desc: op.desc(), Brief: op.brief(), RegionID: op.regionID,
		RegionEpoch: &pdapi.RegionEpoch{ConfVer: op.confVer, Version: op.version},
		Kind:        op.kindBits(), Timeout: op.timeout(), Status: pdapi.OpStarted,
	}
}
