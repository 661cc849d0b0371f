package pdapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
)

// Schedulers returns GET /schedulers: the names of the enabled schedulers.
// The evict-leader scheduler appears once, as "evict-leader-scheduler",
// however many stores it holds; see [Client.EvictLeaderStores].
func (c *Client) Schedulers(ctx context.Context) ([]string, error) {
	var out []string
	err := c.do(ctx, call{method: http.MethodGet, path: "/schedulers"}, &out)
	return out, err
}

// evictLeaderConfig is GET /scheduler-config/evict-leader-scheduler/list.
type evictLeaderConfig struct {
	StoreIDRanges map[string][]keyRange `json:"store-id-ranges"`
	Batch         int                   `json:"batch"`
}

// keyRange is a key range an evict-leader scheduler covers for a store.
type keyRange struct {
	StartKey string `json:"start-key"`
	EndKey   string `json:"end-key"`
}

// EvictLeaderStores returns the ids of the stores an evict-leader scheduler
// is evicting leaders from, in ascending order (GET
// /scheduler-config/evict-leader-scheduler/list). No evict-leader scheduler
// means no stores and no error. PD 8.5 can leave the scheduler in place
// with no stores after the last one is removed (tikv/pd#9908); that too
// gives no stores.
func (c *Client) EvictLeaderStores(ctx context.Context) ([]uint64, error) {
	var cfg evictLeaderConfig
	err := c.do(ctx, call{method: http.MethodGet, path: "/scheduler-config/" + EvictLeaderScheduler + "/list"}, &cfg)
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusNotFound && isNotFoundMessage(e.Message) {
		return nil, nil // "scheduler not found": nothing is being evicted
	}
	if err != nil {
		return nil, err
	}
	ids := make([]uint64, 0, len(cfg.StoreIDRanges))
	for k := range cfg.StoreIDRanges {
		id, err := strconv.ParseUint(k, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("pdapi: decode evict-leader config: bad store id %q", k)
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

// AddEvictLeader sends POST /schedulers {"name":"evict-leader-scheduler",
// "store_id":S}: PD moves every leader off the store and lets none move in
// until [Client.RemoveEvictLeader]. Adding a store that is already held
// succeeds ("The scheduler has been applied to the store.").
func (c *Client) AddEvictLeader(ctx context.Context, storeID uint64) error {
	if storeID == 0 {
		return errors.New("pdapi: evict leader: store id 0 is invalid")
	}
	body := map[string]any{"name": EvictLeaderScheduler, "store_id": storeID}
	return c.do(ctx, call{method: http.MethodPost, path: "/schedulers", body: body}, nil)
}

// RemoveEvictLeader sends DELETE /schedulers/evict-leader-scheduler-{S}: the
// store is released, and the scheduler is deleted with its last store. PD
// answers 404 when the store or the scheduler is already gone; that counts
// as done and returns nil.
func (c *Client) RemoveEvictLeader(ctx context.Context, storeID uint64) error {
	if storeID == 0 {
		return errors.New("pdapi: cancel evict leader: store id 0 is invalid")
	}
	name := EvictLeaderScheduler + "-" + strconv.FormatUint(storeID, 10)
	err := c.do(ctx, call{method: http.MethodDelete, path: "/schedulers/" + name}, nil)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}
