package pdapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// AddTransferLeader sends POST /operators {"name":"transfer-leader",
// "region_id":R,"to_store_id":S}: move the region's leader to its peer on
// store S. The key is to_store_id; PD answers 400 "missing store id to
// transfer leader to" for store_id. PD refuses with 500 when S holds no voter
// of the region, when S is unhealthy, when the leader is already on S ("no
// operator step is built") and when the region already has an operator
// ([ErrOperatorExists]). Read the region first to skip a transfer that is
// already done.
func (c *Client) AddTransferLeader(ctx context.Context, regionID, toStoreID uint64) error {
	if regionID == 0 || toStoreID == 0 {
		return fmt.Errorf("pdapi: transfer leader: region %d to store %d: ids must be non-zero", regionID, toStoreID)
	}
	body := map[string]any{"name": "transfer-leader", "region_id": regionID, "to_store_id": toStoreID}
	return c.do(ctx, call{method: http.MethodPost, path: "/operators", body: body}, nil)
}

// AddTransferPeer sends POST /operators {"name":"transfer-peer",
// "region_id":R,"from_store_id":A,"to_store_id":B}: move the region's
// peer from store A to store B. PD refuses with 500 when the region has no
// peer on A ("region has no peer in store A"), when B is missing, Tombstone
// or down more than 10 minutes, and when the region already has an operator.
func (c *Client) AddTransferPeer(ctx context.Context, regionID, fromStoreID, toStoreID uint64) error {
	if regionID == 0 || fromStoreID == 0 || toStoreID == 0 {
		return fmt.Errorf("pdapi: transfer peer: region %d from store %d to store %d: ids must be non-zero", regionID, fromStoreID, toStoreID)
	}
	if fromStoreID == toStoreID {
		return fmt.Errorf("pdapi: transfer peer: region %d: from and to store are both %d", regionID, fromStoreID)
	}
	body := map[string]any{"name": "transfer-peer", "region_id": regionID, "from_store_id": fromStoreID, "to_store_id": toStoreID}
	return c.do(ctx, call{method: http.MethodPost, path: "/operators", body: body}, nil)
}

// Operators returns GET /operators?object=1: the operators PD is running.
func (c *Client) Operators(ctx context.Context) ([]Operator, error) {
	var raw []json.RawMessage
	if err := c.do(ctx, call{method: http.MethodGet, path: "/operators", query: url.Values{"object": {"1"}}}, &raw); err != nil {
		return nil, err
	}
	ops := make([]Operator, 0, len(raw))
	for _, r := range raw {
		var op Operator
		var s string
		switch {
		case json.Unmarshal(r, &s) == nil:
			// A PD without ?object lists Operator.String() values.
			op = Operator{Desc: s, RegionID: regionInOperatorString(s)}
		default:
			if err := json.Unmarshal(r, &op); err != nil {
				return nil, fmt.Errorf("pdapi: decode operators: %w", err)
			}
		}
		ops = append(ops, op)
	}
	return ops, nil
}

var operatorRegionRE = regexp.MustCompile(`region:(\d+)\(`)

func regionInOperatorString(s string) uint64 {
	m := operatorRegionRE.FindStringSubmatch(s)
	if m == nil {
		return 0
	}
	id, _ := strconv.ParseUint(m[1], 10, 64)
	return id
}

// OperatorStatus returns GET /operators/{region_id}: the region's running
// operator, or its last one if it finished in the past 10 minutes. PD
// answers 500 "operator not found" when there is neither; that is an error
// matching [ErrNotFound].
func (c *Client) OperatorStatus(ctx context.Context, regionID uint64) (RegionOperator, error) {
	var s string
	if err := c.do(ctx, call{method: http.MethodGet, path: "/operators/" + strconv.FormatUint(regionID, 10)}, &s); err != nil {
		return RegionOperator{}, err
	}
	return ParseRegionOperator(s)
}

// ParseRegionOperator parses PD's "status: RUNNING, operator: ..." string.
func ParseRegionOperator(s string) (RegionOperator, error) {
	rest, ok := strings.CutPrefix(s, "status: ")
	if !ok {
		return RegionOperator{}, errors.New("pdapi: operator status: no \"status: \" prefix in " + strconv.Quote(s))
	}
	state, op, ok := strings.Cut(rest, ", operator: ")
	if !ok {
		return RegionOperator{}, errors.New("pdapi: operator status: no \", operator: \" in " + strconv.Quote(s))
	}
	return RegionOperator{State: RegionOperatorState(state), Operator: op, Raw: s}, nil
}
