package ratelimiter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync/atomic"

	"github.com/operator-dev/operator/actuators"
	"github.com/operator-dev/operator/ratelimiter/api"
	"github.com/operator-dev/operator/ratelimiter/client"
	"github.com/operator-dev/operator/schemas"
)

// An Executor runs the catalog's actions through the management API of any
// node of one rate limiter deployment (nodes share their state in Redis, so
// any node can change it). It is safe for concurrent use.
type Executor struct {
	clients []*client.Client
	next    atomic.Uint64
}

var _ actuators.Executor = (*Executor)(nil)

// NewExecutor returns an executor over one client per node. Each attempt
// starts at the next node in turn, and a node that refuses the connection
// is skipped for the next one within the attempt: the request never reached
// it, so this cannot apply an action twice.
func NewExecutor(clients ...*client.Client) (*Executor, error) {
	if len(clients) == 0 {
		return nil, errors.New("rate limiter executor needs at least one node URL")
	}
	for _, c := range clients {
		if c == nil {
			return nil, errors.New("rate limiter executor: nil client")
		}
	}
	return &Executor{clients: clients}, nil
}

// Params of each action, as the catalog's schemas describe them.
type (
	keyParams struct {
		Key string `json:"key"`
	}
	limitParams struct {
		Pattern   string `json:"pattern"`
		Limit     int64  `json:"limit"`
		WindowMS  int64  `json:"window_ms"`
		Algorithm string `json:"algorithm"`
	}
	blockParams struct {
		Key    string `json:"key"`
		TTLMS  int64  `json:"ttl_ms"`
		Reason string `json:"reason"`
	}
	nodeParams struct {
		NodeID string `json:"node_id"`
	}
)

// Execute runs one attempt of req against the rate limiter, sending req.ID
// as the Idempotency-Key. Errors are classified for the worker: see the
// package documentation.
func (e *Executor) Execute(ctx context.Context, req schemas.ActionRequest) (schemas.ActionResult, error) {
	ctx = client.WithIdempotencyKey(ctx, req.ID)
	var (
		out any
		err error
	)
	switch req.Action {
	case "reset_counter":
		var p keyParams
		if err := decodeParams(req.Params, &p); err != nil {
			return schemas.ActionResult{}, err
		}
		out, err = call(ctx, e, func(c *client.Client) (api.CounterReset, error) { return c.ResetCounter(ctx, p.Key) })
	case "update_limit":
		var p limitParams
		if err := decodeParams(req.Params, &p); err != nil {
			return schemas.ActionResult{}, err
		}
		spec := api.LimitSpec{Limit: p.Limit, WindowMS: p.WindowMS, Algorithm: p.Algorithm}
		out, err = call(ctx, e, func(c *client.Client) (api.Limit, error) { return c.PutLimit(ctx, p.Pattern, spec) })
	case "block_key":
		var p blockParams
		if err := decodeParams(req.Params, &p); err != nil {
			return schemas.ActionResult{}, err
		}
		spec := api.BlockSpec{TTLMS: p.TTLMS, Reason: p.Reason}
		out, err = call(ctx, e, func(c *client.Client) (api.Block, error) { return c.PutBlock(ctx, p.Key, spec) })
	case "unblock_key":
		var p keyParams
		if err := decodeParams(req.Params, &p); err != nil {
			return schemas.ActionResult{}, err
		}
		out, err = call(ctx, e, func(c *client.Client) (api.BlockDeleted, error) {
			d, err := c.DeleteBlock(ctx, p.Key)
			if errors.Is(err, client.ErrNotFound) {
				// Already unblocked (expired, or an earlier attempt
				// went through): the goal holds.
				return api.BlockDeleted{Key: p.Key}, nil
			}
			return d, err
		})
	case "drain_node":
		var p nodeParams
		if err := decodeParams(req.Params, &p); err != nil {
			return schemas.ActionResult{}, err
		}
		out, err = call(ctx, e, func(c *client.Client) (api.NodeAction, error) {
			if err := lastNodeGuard(ctx, c, p.NodeID); err != nil {
				return api.NodeAction{}, err
			}
			return c.Drain(ctx, p.NodeID)
		})
	case "undrain_node":
		var p nodeParams
		if err := decodeParams(req.Params, &p); err != nil {
			return schemas.ActionResult{}, err
		}
		out, err = call(ctx, e, func(c *client.Client) (api.NodeAction, error) { return c.Undrain(ctx, p.NodeID) })
	default:
		return schemas.ActionResult{}, fmt.Errorf("rate limiter executor has no action %q", req.Action)
	}
	if err != nil {
		return schemas.ActionResult{}, err
	}
	b, err := json.Marshal(out)
	if err != nil {
		return schemas.ActionResult{}, fmt.Errorf("encode %s output: %w", req.Action, err)
	}
	return schemas.ActionResult{Output: b}, nil
}

// errRefused marks an action the executor refuses to run; it is permanent.
var errRefused = errors.New("refused")

// lastNodeGuard refuses to drain id when no other node is up, and a node
// the registry does not list.
func lastNodeGuard(ctx context.Context, c *client.Client, id string) error {
	nodes, err := c.Nodes(ctx)
	if err != nil {
		return fmt.Errorf("list nodes before draining %s: %w", id, err)
	}
	known, othersUp := false, 0
	for _, n := range nodes.Nodes {
		if n.ID == id {
			known = true
		} else if n.State == api.NodeUp {
			othersUp++
		}
	}
	if !known {
		return fmt.Errorf("%w: node %q is not in the registry", errRefused, id)
	}
	if othersUp == 0 {
		return fmt.Errorf("%w: %s is the only node up; draining it would stop the service", errRefused, id)
	}
	return nil
}

// call runs fn against the nodes in turn, starting at the next node, and
// moves to the following node only when the connection was refused. It
// classifies the final error.
func call[T any](ctx context.Context, e *Executor, fn func(*client.Client) (T, error)) (T, error) {
	start := int(e.next.Add(1)-1) % len(e.clients)
	var (
		out T
		err error
	)
	for i := range e.clients {
		c := e.clients[(start+i)%len(e.clients)]
		out, err = fn(c)
		if err == nil || !refused(err) {
			break
		}
	}
	return out, classify(err)
}

// refused reports a failure to connect: the request never left.
func refused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// classify marks errors the worker may retry. API errors carry their own
// classification (5xx and 429 transient, other 4xx permanent); transport
// errors and timeouts are transient; a cancelled context is not.
func classify(err error) error {
	var apiErr *client.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errRefused):
		return err
	case errors.As(err, &apiErr):
		return err // *client.Error reports Transient() itself
	case errors.Is(err, context.Canceled):
		return err
	case client.IsTransient(err):
		return actuators.Transient(err)
	}
	return err
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
