package pdapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Stores returns GET /stores: the Up and Offline stores. PD hides
// Tombstone stores here; use [Client.StoresByState] to see every store.
func (c *Client) Stores(ctx context.Context) ([]Store, error) {
	var out storesResponse
	if err := c.do(ctx, call{method: http.MethodGet, path: "/stores"}, &out); err != nil {
		return nil, err
	}
	return out.Stores, nil
}

// StoresByState returns GET /stores/check?state=...: the stores whose
// state_name is one of states (PD matches case-insensitively). With no
// states it returns every store, Tombstones included. PD has this endpoint
// since v7.5.
func (c *Client) StoresByState(ctx context.Context, states ...StoreState) ([]Store, error) {
	q := url.Values{}
	for _, s := range states {
		q.Add("state", strings.ToLower(string(s)))
	}
	var out storesResponse
	if err := c.do(ctx, call{method: http.MethodGet, path: "/stores/check", query: q}, &out); err != nil {
		return nil, err
	}
	return out.Stores, nil
}

// Store returns GET /store/{id}, in any state. A missing store is an error
// matching [ErrNotFound].
func (c *Client) Store(ctx context.Context, id uint64) (Store, error) {
	var out Store
	err := c.do(ctx, call{method: http.MethodGet, path: "/store/" + strconv.FormatUint(id, 10)}, &out)
	return out, err
}

// SetStoreState sends POST /store/{id}/state?state=Up|Offline. Offline
// starts draining the store (PD refuses with 400 ErrStoresNotEnough if too
// few Up stores would remain); Up cancels a drain. Tombstone is PD's own
// step and cannot be set; a Tombstone store answers [ErrStoreRemoved].
// Setting the state a store already has succeeds.
func (c *Client) SetStoreState(ctx context.Context, id uint64, state StoreState) error {
	if state != StoreUp && state != StoreOffline {
		return fmt.Errorf("pdapi: cannot set store %d to %q: only Up and Offline can be set", id, state)
	}
	q := url.Values{"state": {string(state)}}
	return c.do(ctx, call{method: http.MethodPost, path: "/store/" + strconv.FormatUint(id, 10) + "/state", query: q}, nil)
}

// SetStoreLimit sends POST /store/{id}/limit {"rate":R,"type":T}: at most
// ratePerMin add-peer and/or remove-peer operations a minute on the store.
// LimitBoth sets both. PD refuses rates <= 0, and refuses the call entirely
// when store-limit-version is v2.
func (c *Client) SetStoreLimit(ctx context.Context, id uint64, ratePerMin float64, typ StoreLimitType) error {
	if ratePerMin <= 0 {
		return fmt.Errorf("pdapi: store %d limit rate %v must be larger than 0", id, ratePerMin)
	}
	body := map[string]any{"rate": ratePerMin}
	if typ != LimitBoth {
		body["type"] = string(typ)
	}
	return c.do(ctx, call{method: http.MethodPost, path: "/store/" + strconv.FormatUint(id, 10) + "/limit", body: body}, nil)
}

// StoreLimits returns GET /stores/limit: every non-Tombstone store's
// limits, by store id.
func (c *Client) StoreLimits(ctx context.Context) (map[uint64]StoreLimit, error) {
	var raw map[string]StoreLimit
	if err := c.do(ctx, call{method: http.MethodGet, path: "/stores/limit"}, &raw); err != nil {
		return nil, err
	}
	out := make(map[uint64]StoreLimit, len(raw))
	for k, v := range raw {
		id, err := strconv.ParseUint(k, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("pdapi: decode stores/limit: bad store id %q", k)
		}
		out[id] = v
	}
	return out, nil
}
