package pdapi

import (
	"context"
	"net/http"
)

// Health returns GET /health: every PD member and whether it is healthy.
// PD answers 200 even when members are unhealthy.
func (c *Client) Health(ctx context.Context) ([]MemberHealth, error) {
	var out []MemberHealth
	err := c.do(ctx, call{method: http.MethodGet, path: "/health"}, &out)
	return out, err
}

// Members returns GET /members: the PD members, the leader and the etcd
// leader.
func (c *Client) Members(ctx context.Context) (Members, error) {
	var out Members
	err := c.do(ctx, call{method: http.MethodGet, path: "/members"}, &out)
	return out, err
}

// ScheduleConfig returns GET /config/schedule.
func (c *Client) ScheduleConfig(ctx context.Context) (ScheduleConfig, error) {
	var out ScheduleConfig
	err := c.do(ctx, call{method: http.MethodGet, path: "/config/schedule"}, &out)
	return out, err
}
