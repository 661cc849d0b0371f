package pdapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
)

// CheckRegions returns GET /regions/check/{check}: the regions with down,
// missing, pending or offline peers, and so on. Count is PD's count of the
// list.
func (c *Client) CheckRegions(ctx context.Context, check RegionCheck) (Regions, error) {
	var out Regions
	err := c.do(ctx, call{method: http.MethodGet, path: "/regions/check/" + string(check)}, &out)
	return out, err
}

// RegionCount returns GET /regions/count, the number of regions in the
// cluster.
func (c *Client) RegionCount(ctx context.Context) (int, error) {
	var out Regions
	if err := c.do(ctx, call{method: http.MethodGet, path: "/regions/count"}, &out); err != nil {
		return 0, err
	}
	return out.Count, nil
}

// Region returns GET /region/id/{id}. A missing region is an error matching
// [ErrNotFound]; PD refuses id 0 with 400. Check [Region.HasLeader] before
// using the leader.
func (c *Client) Region(ctx context.Context, id uint64) (Region, error) {
	if id == 0 {
		return Region{}, fmt.Errorf("pdapi: region id 0 is invalid")
	}
	var out Region
	err := c.do(ctx, call{method: http.MethodGet, path: "/region/id/" + strconv.FormatUint(id, 10)}, &out)
	return out, err
}
