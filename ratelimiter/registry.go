package ratelimiter

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/operator-dev/operator/ratelimiter/api"
)

// nodeInfo is the JSON a node writes into the registry with each heartbeat.
type nodeInfo struct {
	ID          string `json:"id"`
	Address     string `json:"address"`
	Version     string `json:"version"`
	StartedAtMS int64  `json:"started_at_ms"`
	// Stopped is set by a node that shut down cleanly, so it is listed down
	// at once rather than after NodeDownAfter.
	Stopped bool `json:"stopped,omitempty"`
}

// Run keeps the node in sync with the shared state until ctx is done: it
// heartbeats into the node registry, applies drain requests and reloads the
// limits when their version changes (polled every [Config.SyncInterval] and
// pushed by pub/sub). On return it marks the node stopped in the registry.
// It returns only after its goroutines have exited, and always returns nil.
func (l *Limiter) Run(ctx context.Context) error {
	l.running.Store(true)
	defer l.running.Store(false)
	trigger := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Go(func() { l.watchChanges(ctx, trigger) })

	l.sync(ctx)
	tick := time.NewTicker(l.cfg.SyncInterval)
	defer tick.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
			l.sync(ctx)
		case <-trigger:
			l.sync(ctx)
		}
	}
	wg.Wait()

	// Cleanup that must happen even though ctx is done.
	if err := l.heartbeat(context.WithoutCancel(ctx), true); err != nil {
		l.log.Warn("could not mark node stopped in the registry", "error", err)
	}
	return nil
}

// watchChanges turns change announcements into sync triggers. Pub/sub only
// shortens the delay; the poll in Run guarantees it.
func (l *Limiter) watchChanges(ctx context.Context, trigger chan<- struct{}) {
	ps := l.rdb.Subscribe(ctx, changedChan)
	defer func() { _ = ps.Close() }()
	ch := ps.Channel()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-ch:
			if !ok {
				return
			}
			select {
			case trigger <- struct{}{}:
			default:
			}
		}
	}
}

// sync heartbeats, applies the drain request and reloads changed limits.
func (l *Limiter) sync(ctx context.Context) {
	if err := l.heartbeat(ctx, false); err != nil {
		l.log.Debug("heartbeat failed", "error", err)
	}
	var v []int64
	err := l.do(ctx, opSync, func(ctx context.Context) error {
		var err error
		v, err = syncConfigScript.Run(ctx, l.rdb, []string{limitsKey, versionKey, epochKey},
			l.cfg.ConfigRetention.Milliseconds()).Int64Slice()
		if err == nil && len(v) != 2 {
			err = fmt.Errorf("sync script returned %d values, want 2", len(v))
		}
		return err
	})
	if err != nil {
		l.log.Debug("limit version poll failed", "error", err)
		return
	}
	version := v[0]
	if l.overLimit != nil {
		l.overLimit.setEpoch(v[1])
	}
	if t := l.table.Load(); t == nil || t.version != version {
		if _, err := l.reload(ctx, version); err != nil {
			l.log.Debug("limit reload failed", "error", err)
		}
	}
}

// heartbeat writes the node's registry entry and applies its drain request.
func (l *Limiter) heartbeat(ctx context.Context, stopped bool) error {
	info, err := json.Marshal(nodeInfo{
		ID:          l.cfg.NodeID,
		Address:     l.cfg.Advertise,
		Version:     l.cfg.Version,
		StartedAtMS: l.startedAt.UnixMilli(),
		Stopped:     stopped,
	})
	if err != nil {
		return fmt.Errorf("encode node info: %w", err)
	}
	var v []int64
	var sent, received time.Time
	err = l.do(ctx, opHeartbeat, func(ctx context.Context) error {
		var err error
		sent = l.nodeNow()
		v, err = heartbeatScript.Run(ctx, l.rdb, []string{nodesInfoKey, nodesHBKey, nodesDrainKey},
			l.cfg.NodeID, info, l.cfg.NodeRetention.Milliseconds()).Int64Slice()
		received = l.nodeNow()
		return err
	})
	if err != nil {
		return err
	}
	if len(v) == 2 {
		// The Redis clock was read about halfway through the round trip.
		mid := sent.Add(received.Sub(sent) / 2)
		offset := mid.Sub(time.UnixMicro(v[0]))
		l.offset.Store(offset.Microseconds())
		l.metrics.clockOffset.Set(offset.Seconds())
	}
	if len(v) == 2 && !stopped {
		l.setDraining(v[1] == 1)
	}
	return nil
}

// Nodes lists the registered nodes with their state, judged against the
// Redis clock: a node whose heartbeat is older than [Config.NodeDownAfter] or
// that stopped is down, and stays listed for [Config.NodeRetention].
func (l *Limiter) Nodes(ctx context.Context) ([]api.Node, error) {
	var v []string
	err := l.do(ctx, opAdmin, func(ctx context.Context) error {
		var err error
		v, err = listNodesScript.Run(ctx, l.rdb, []string{nodesInfoKey, nodesHBKey, nodesDrainKey}).StringSlice()
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(v) == 0 {
		return nil, fmt.Errorf("%w: empty node list reply", ErrUnavailable)
	}
	now, _ := strconv.ParseFloat(v[0], 64)
	// Three sections: info pairs, heartbeat pairs, drained ids.
	sections := [][]string{nil, nil, nil}
	s := 0
	for _, x := range v[1:] {
		if x == "" && s < 2 {
			s++
			continue
		}
		sections[s] = append(sections[s], x)
	}
	heartbeats := map[string]float64{}
	for i := 0; i+1 < len(sections[1]); i += 2 {
		hb, _ := strconv.ParseFloat(sections[1][i+1], 64)
		heartbeats[sections[1][i]] = hb
	}
	drained := map[string]bool{}
	for _, id := range sections[2] {
		drained[id] = true
	}
	nodes := []api.Node{}
	for i := 0; i+1 < len(sections[0]); i += 2 {
		var info nodeInfo
		if err := json.Unmarshal([]byte(sections[0][i+1]), &info); err != nil {
			l.log.Warn("skipping unreadable registry entry", "node_id", sections[0][i], "error", err)
			continue
		}
		hb := heartbeats[sections[0][i]]
		age := time.Duration(now-hb) * time.Microsecond
		n := api.Node{
			ID:             sections[0][i],
			Address:        info.Address,
			State:          api.NodeUp,
			LastHeartbeat:  time.UnixMicro(int64(hb)).UTC(),
			HeartbeatAgeMS: age.Milliseconds(),
			StartedAt:      time.UnixMilli(info.StartedAtMS).UTC(),
			Version:        info.Version,
		}
		switch {
		case info.Stopped || age > l.cfg.NodeDownAfter:
			n.State = api.NodeDown
		case drained[n.ID]:
			n.State = api.NodeDraining
		}
		nodes = append(nodes, n)
	}
	slices.SortFunc(nodes, func(a, b api.Node) int { return cmp.Compare(a.ID, b.ID) })
	return nodes, nil
}

// SetDraining asks node id to drain (on) or to stop draining. The node
// applies it at once if it is this node, else within one sync interval. It
// returns [ErrNotFound] if id is not registered.
func (l *Limiter) SetDraining(ctx context.Context, id string, on bool) error {
	flag := ""
	if on {
		flag = "1"
	}
	var found int64
	err := l.do(ctx, opAdmin, func(ctx context.Context) error {
		var err error
		found, err = setDrainScript.Run(ctx, l.rdb, []string{nodesInfoKey, nodesHBKey, nodesDrainKey},
			id, flag, l.cfg.NodeRetention.Milliseconds(), changedChan).Int64()
		return err
	})
	if err != nil {
		return err
	}
	if found == 0 {
		return fmt.Errorf("node %q: %w", id, ErrNotFound)
	}
	if id == l.cfg.NodeID {
		l.setDraining(on)
	}
	return nil
}
