package scenario

import (
	"context"
	"fmt"
	"net/http"

	"github.com/redis/go-redis/v9"

	"github.com/operator-dev/operator/ratelimiter/client"
)

// Process controls a stack running in this process. A remote stack has none,
// and the scenarios that need one say so.
type Process interface {
	KillNode(id string) error
	RestartNode(ctx context.Context, id string) error
	StopRedis() error
	StartRedis() error
}

// Env is what a scenario acts on.
type Env struct {
	// Nodes maps node id to its client, with the management token set.
	Nodes map[string]*client.Client
	// Order lists the node ids in a stable order.
	Order []string
	// Redis is an admin connection to the limiter's Redis.
	Redis redis.UniversalClient
	// Proc is set for a stack in this process.
	Proc Process
}

// NewEnv builds an Env from node URLs (the registry ids are read from each
// node's status).
func NewEnv(ctx context.Context, urls []string, token string, rdb redis.UniversalClient, proc Process) (*Env, error) {
	e := &Env{Nodes: map[string]*client.Client{}, Redis: rdb, Proc: proc}
	hc := &http.Client{}
	for _, u := range urls {
		c, err := client.New(u, hc)
		if err != nil {
			return nil, err
		}
		c = c.WithToken(token)
		st, err := c.Status(ctx)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", u, err)
		}
		e.Nodes[st.Node] = c
		e.Order = append(e.Order, st.Node)
	}
	if len(e.Order) == 0 {
		return nil, fmt.Errorf("no nodes")
	}
	return e, nil
}

// Any returns a node client, the first in Order.
func (e *Env) Any() *client.Client { return e.Nodes[e.Order[0]] }

// URLs returns the nodes' base URLs in Order.
func (e *Env) URLs() []string {
	out := make([]string, 0, len(e.Order))
	for _, id := range e.Order {
		out = append(out, e.Nodes[id].BaseURL())
	}
	return out
}

// Victim is the node scenarios pick on: the second one when there are
// several, so the first stays a stable entry point.
func (e *Env) Victim() string {
	if len(e.Order) > 1 {
		return e.Order[1]
	}
	return e.Order[0]
}
