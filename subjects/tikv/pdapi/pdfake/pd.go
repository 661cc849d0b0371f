package pdfake

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/operator-dev/operator/subjects/tikv/pdapi"
)

// Handler returns the fake's HTTP API: PD's under /pd/api/v1 and
// Prometheus's instant query under /api/v1/query.
func (c *Cluster) Handler() http.Handler {
	mux := http.NewServeMux()
	p := pdapi.APIPrefix
	// Routes that PD serves only once the cluster is bootstrapped.
	cluster := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			c.mu.Lock()
			defer c.mu.Unlock()
			if len(c.stores) == 0 {
				writeJSON(w, http.StatusInternalServerError, "[PD:cluster:ErrNotBootstrapped]TiKV cluster not bootstrapped, please start TiKV first")
				return
			}
			h(w, r)
		}
	}
	locked := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			c.mu.Lock()
			defer c.mu.Unlock()
			h(w, r)
		}
	}
	mux.HandleFunc("GET "+p+"/stores", cluster(c.getStores))
	mux.HandleFunc("GET "+p+"/stores/check", cluster(c.getStoresCheck))
	mux.HandleFunc("GET "+p+"/stores/limit", locked(c.getStoresLimit))
	mux.HandleFunc("GET "+p+"/store/{id}", cluster(c.getStore))
	mux.HandleFunc("POST "+p+"/store/{id}/state", cluster(c.postStoreState))
	mux.HandleFunc("POST "+p+"/store/{id}/limit", locked(c.postStoreLimit))
	mux.HandleFunc("GET "+p+"/regions/check/{check}", cluster(c.getRegionsCheck))
	mux.HandleFunc("GET "+p+"/regions/count", cluster(c.getRegionsCount))
	mux.HandleFunc("GET "+p+"/region/id/{id}", cluster(c.getRegion))
	mux.HandleFunc("GET "+p+"/health", locked(c.getHealth))
	mux.HandleFunc("GET "+p+"/members", locked(c.getMembers))
	mux.HandleFunc("GET "+p+"/config/schedule", locked(c.getScheduleConfig))
	mux.HandleFunc("GET "+p+"/schedulers", locked(c.getSchedulers))
	mux.HandleFunc("POST "+p+"/schedulers", locked(c.postSchedulers))
	mux.HandleFunc("DELETE "+p+"/schedulers/{name}", locked(c.deleteScheduler))
	mux.HandleFunc("GET "+p+"/scheduler-config/evict-leader-scheduler/list", locked(c.getEvictLeaderConfig))
	mux.HandleFunc("GET "+p+"/operators", locked(c.getOperators))
	mux.HandleFunc("POST "+p+"/operators", locked(c.postOperators))
	mux.HandleFunc("GET "+p+"/operators/{region_id}", locked(c.getOperator))
	mux.HandleFunc("GET /api/v1/query", locked(c.promQuery))
	mux.HandleFunc("POST /api/v1/query", locked(c.promQuery))
	return mux
}

// writeJSON answers as PD's render does: indented JSON, PD's content type.
// Error and mutation bodies are JSON strings.
func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// writeInvalidInput answers as apiutil.ErrorResp does for an
// errcode.InvalidInputErr: 400 and an errcode object.
func writeInvalidInput(w http.ResponseWriter, err error) {
	w.Header().Set("TiDB-Error-Code", "input")
	writeJSON(w, http.StatusBadRequest, map[string]any{"code": "input", "msg": err.Error(), "data": map[string]any{}})
}

func pathID(w http.ResponseWriter, r *http.Request, name string) (uint64, bool) {
	id, err := strconv.ParseUint(r.PathValue(name), 10, 64)
	if err != nil {
		writeInvalidInput(w, err)
		return 0, false
	}
	return id, true
}

// storeInfo builds PD's StoreInfo for a store at the model's time.
func (c *Cluster) storeInfo(s *store) pdapi.Store {
	leaders, peers := c.leaderCount(s.id), c.peerCount(s.id)
	state := c.stateName(s)
	meta := pdapi.StoreMeta{
		ID: s.id, Address: s.address, State: s.meta, Labels: s.labels, Version: "8.5.5",
		PeerAddress: s.address, StatusAddress: s.statusAddress, GitHash: "e2b1f8f3a4d0c9b7a6e5d4c3b2a1f0e9d8c7b6a5",
		StartTimestamp: s.started.Unix(), DeployPath: "/", LastHeartbeat: s.lastHeartbeat.UnixNano(),
		NodeState: map[pdapi.MetaState]int{pdapi.MetaUp: 1, pdapi.MetaOffline: 2, pdapi.MetaTombstone: 3}[s.meta],
		StateName: state,
	}
	start, hb := s.started.UTC(), s.lastHeartbeat.UTC()
	status := pdapi.StoreStatus{
		Capacity: pdapi.ByteSize(s.capacity), Available: pdapi.ByteSize(s.available),
		UsedSize:    pdapi.ByteSize(uint64(peers) << 20), // 1 MiB a region
		LeaderCount: leaders, LeaderWeight: 1, LeaderScore: float64(leaders), LeaderSize: int64(leaders),
		RegionCount: peers, RegionWeight: 1, RegionScore: float64(peers), RegionSize: int64(peers),
		StartTS: &start, LastHeartbeatTS: &hb,
		PauseLeaderTransferIn: c.evicting[s.id], PauseLeaderTransferOut: c.evicting[s.id],
	}
	if state == pdapi.StoreUp {
		status.SlowScore = 1
	}
	if up := s.lastHeartbeat.Sub(s.started); up > 0 {
		status.Uptime = &pdapi.Duration{Duration: up}
	}
	return pdapi.Store{Meta: meta, Status: status}
}

type storesInfo struct {
	Count  int           `json:"count"`
	Stores []pdapi.Store `json:"stores"`
}

// getStores: GET /stores lists Up and Offline stores; ?state= takes
// numeric metapb states.
func (c *Cluster) getStores(w http.ResponseWriter, r *http.Request) {
	accept := []pdapi.MetaState{pdapi.MetaUp, pdapi.MetaOffline}
	if vs, ok := r.URL.Query()["state"]; ok {
		accept = nil
		for _, v := range vs {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 2 {
				writeJSON(w, http.StatusInternalServerError, fmt.Sprintf("unknown StoreState: %v", v))
				return
			}
			accept = append(accept, pdapi.MetaState(n))
		}
	}
	out := storesInfo{Stores: []pdapi.Store{}}
	for _, id := range slices.Sorted(maps.Keys(c.stores)) {
		if s := c.stores[id]; slices.Contains(accept, s.meta) {
			out.Stores = append(out.Stores, c.storeInfo(s))
		}
	}
	out.Count = len(out.Stores)
	writeJSON(w, http.StatusOK, out)
}

// getStoresCheck: GET /stores/check?state= filters by state_name,
// case-insensitively; no state lists every store.
func (c *Cluster) getStoresCheck(w http.ResponseWriter, r *http.Request) {
	var want []string
	for _, v := range r.URL.Query()["state"] {
		l := strings.ToLower(v)
		if l == "" {
			continue
		}
		if !slices.Contains([]string{"up", "offline", "tombstone", "down", "disconnected"}, l) {
			writeJSON(w, http.StatusBadRequest, "unknown StoreState: "+v)
			return
		}
		want = append(want, l)
	}
	out := storesInfo{Stores: []pdapi.Store{}}
	for _, id := range slices.Sorted(maps.Keys(c.stores)) {
		info := c.storeInfo(c.stores[id])
		if want != nil && !slices.Contains(want, strings.ToLower(string(info.Meta.StateName))) {
			continue
		}
		out.Stores = append(out.Stores, info)
	}
	out.Count = len(out.Stores)
	writeJSON(w, http.StatusOK, out)
}

func (c *Cluster) getStore(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	s, ok := c.stores[id]
	if !ok {
		writeJSON(w, http.StatusNotFound, fmt.Sprintf("[PD:core:ErrStoreNotFound]store %d not found", id))
		return
	}
	writeJSON(w, http.StatusOK, c.storeInfo(s))
}

// postStoreState: POST /store/{id}/state?state=Up|Offline.
func (c *Cluster) postStoreState(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	s, ok := c.stores[id]
	if !ok {
		writeJSON(w, http.StatusNotFound, fmt.Sprintf("[PD:core:ErrStoreNotFound]store %d not found", id))
		return
	}
	if s.meta == pdapi.MetaTombstone {
		writeJSON(w, http.StatusGone, fmt.Sprintf("[PD:core:ErrStoreRemoved]store %d has been removed", id))
		return
	}
	switch state := r.URL.Query().Get("state"); {
	case strings.EqualFold(state, "Up"):
		s.meta = pdapi.MetaUp
	case strings.EqualFold(state, "Offline"):
		if s.meta == pdapi.MetaOffline {
			break
		}
		up := 0
		for _, o := range c.stores {
			if o.id != id && o.meta == pdapi.MetaUp {
				up++
			}
		}
		if up < c.maxReplicas {
			writeJSON(w, http.StatusBadRequest, fmt.Sprintf(
				"[PD:core:ErrStoresNotEnough]can not remove store %d since the number of up stores would be %d while need %d", id, up, c.maxReplicas))
			return
		}
		s.meta = pdapi.MetaOffline
	default:
		writeJSON(w, http.StatusBadRequest, fmt.Sprintf("invalid state %v", state))
		return
	}
	writeJSON(w, http.StatusOK, "The store's state is updated.")
}

// postStoreLimit: POST /store/{id}/limit {"rate":R,"type":"add-peer"|"remove-peer"}.
func (c *Cluster) postStoreLimit(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("ttlSecond") != "" {
		writeJSON(w, http.StatusBadRequest, "ttlSecond is deprecated")
		return
	}
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	if _, ok := c.stores[id]; !ok {
		writeJSON(w, http.StatusInternalServerError, fmt.Sprintf("[PD:core:ErrStoreNotFound]store %d not found", id))
		return
	}
	input, ok := readBody(w, r)
	if !ok {
		return
	}
	rateVal, ok := input["rate"]
	if !ok {
		writeJSON(w, http.StatusBadRequest, "rate unset")
		return
	}
	rate, ok := rateVal.(float64)
	if !ok || rate <= 0 {
		writeJSON(w, http.StatusBadRequest, "invalid rate which should be larger than 0")
		return
	}
	lim := c.limits[id]
	switch typ, given := input["type"]; {
	case !given:
		lim.AddPeer, lim.RemovePeer = rate, rate
	case typ == "add-peer":
		lim.AddPeer = rate
	case typ == "remove-peer":
		lim.RemovePeer = rate
	default:
		writeJSON(w, http.StatusBadRequest, "unknown type")
		return
	}
	c.limits[id] = lim
	writeJSON(w, http.StatusOK, "The store's limit is updated.")
}

func (c *Cluster) getStoresLimit(w http.ResponseWriter, _ *http.Request) {
	out := map[string]pdapi.StoreLimit{}
	for id, lim := range c.limits {
		if s, ok := c.stores[id]; ok && s.meta != pdapi.MetaTombstone {
			out[strconv.FormatUint(id, 10)] = lim
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// readBody decodes a JSON object body, answering 400 as PD does when it is
// not one.
func readBody(w http.ResponseWriter, r *http.Request) (map[string]any, bool) {
	data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeInvalidInput(w, err)
		return nil, false
	}
	var input map[string]any
	if err := json.Unmarshal(data, &input); err != nil {
		writeInvalidInput(w, err)
		return nil, false
	}
	return input, true
}

// regionInfo builds PD's RegionInfo for a region at the model's time.
func (c *Cluster) regionInfo(r *region) pdapi.Region {
	out := pdapi.Region{
		ID:              r.id,
		StartKey:        fmt.Sprintf("7480000000000000FF%04X00000000000000F8", r.id),
		EndKey:          fmt.Sprintf("7480000000000000FF%04X00000000000000F8", r.id+1),
		Epoch:           &pdapi.RegionEpoch{ConfVer: r.confVer, Version: r.version},
		Peers:           slices.Clone(r.peers),
		Leader:          pdapi.Peer{RoleName: ""},
		ApproximateSize: 1,
	}
	for _, p := range r.peers {
		if p.StoreID == r.leaderStore {
			out.Leader = p
			continue
		}
		age := c.heartbeatAge(p.StoreID)
		if age > PeerDownAfter {
			out.DownPeers = append(out.DownPeers, pdapi.DownPeer{Peer: p, DownSeconds: uint64(age / time.Second)})
		}
		if age > DisconnectAfter {
			out.PendingPeers = append(out.PendingPeers, p)
		}
	}
	return out
}

// regionChecks are the regions/check lists PD serves; the fake derives
// the first five and answers the others empty.
var regionChecks = []string{"down-peer", "pending-peer", "miss-peer", "extra-peer", "offline-peer",
	"learner-peer", "empty-region", "oversized-region", "undersized-region"}

func (c *Cluster) getRegionsCheck(w http.ResponseWriter, r *http.Request) {
	check := r.PathValue("check")
	if !slices.Contains(regionChecks, check) {
		http.NotFound(w, r)
		return
	}
	out := pdapi.Regions{Regions: []pdapi.Region{}}
	for _, id := range slices.Sorted(maps.Keys(c.regions)) {
		reg := c.regions[id]
		info := c.regionInfo(reg)
		var match bool
		switch check {
		case "down-peer":
			match = len(info.DownPeers) > 0
		case "pending-peer":
			match = len(info.PendingPeers) > 0
		case "miss-peer":
			match = len(reg.peers) < c.maxReplicas
		case "extra-peer":
			match = len(reg.peers) > c.maxReplicas
		case "offline-peer":
			for _, p := range reg.peers {
				if s := c.stores[p.StoreID]; s != nil && s.meta == pdapi.MetaOffline {
					match = true
				}
			}
		}
		if match {
			out.Regions = append(out.Regions, info)
		}
	}
	out.Count = len(out.Regions)
	writeJSON(w, http.StatusOK, out)
}

func (c *Cluster) getRegionsCount(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"count": len(c.regions), "regions": nil})
}

func (c *Cluster) getRegion(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	if id == 0 {
		writeJSON(w, http.StatusBadRequest, "[PD:region:ErrRegionInvalidID]invalid region id")
		return
	}
	reg, ok := c.regions[id]
	if !ok {
		writeJSON(w, http.StatusNotFound, fmt.Sprintf("[PD:region:ErrRegionNotFound]region %d not found", id))
		return
	}
	writeJSON(w, http.StatusOK, c.regionInfo(reg))
}

func (c *Cluster) getHealth(w http.ResponseWriter, _ *http.Request) {
	out := make([]pdapi.MemberHealth, 0, len(c.members))
	for _, m := range c.members {
		out = append(out, pdapi.MemberHealth{Name: m.name, MemberID: m.id, ClientURLs: []string{"http://" + m.name + ":2379"}, Health: m.healthy})
	}
	writeJSON(w, http.StatusOK, out)
}

func (c *Cluster) member(m *pdMember) pdapi.Member {
	return pdapi.Member{
		Name: m.name, MemberID: m.id,
		PeerURLs: []string{"http://" + m.name + ":2380"}, ClientURLs: []string{"http://" + m.name + ":2379"},
		DeployPath: "/", BinaryVersion: "v8.5.5", GitHash: "8f0e1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b",
	}
}

func (c *Cluster) getMembers(w http.ResponseWriter, _ *http.Request) {
	out := pdapi.Members{Header: &pdapi.ResponseHeader{ClusterID: c.clusterID}}
	for _, m := range c.members {
		out.Members = append(out.Members, c.member(m))
	}
	leader := c.member(c.members[c.leader])
	out.Leader, out.EtcdLeader = &leader, &leader
	writeJSON(w, http.StatusOK, out)
}

func (c *Cluster) getScheduleConfig(w http.ResponseWriter, _ *http.Request) {
	limits := map[string]pdapi.StoreLimit{}
	for id, lim := range c.limits {
		limits[strconv.FormatUint(id, 10)] = lim
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"max-snapshot-count": 64, "max-pending-peer-count": 64, "max-merge-region-size": 54,
		"max-merge-region-keys": 540000, "split-merge-interval": "1h0m0s", "patrol-region-interval": "10ms",
		"max-store-down-time":   pdapi.Duration{Duration: c.maxStoreDownTime},
		"leader-schedule-limit": 4, "leader-schedule-policy": "count", "region-schedule-limit": 2048,
		"replica-schedule-limit": 64, "merge-schedule-limit": 8, "hot-region-schedule-limit": 4,
		"store-limit": limits, "tolerant-size-ratio": 0, "low-space-ratio": 0.8, "high-space-ratio": 0.7,
		"enable-remove-down-replica": "true", "enable-replace-offline-replica": "true",
		"enable-make-up-replica": "true", "enable-remove-extra-replica": "true",
		"enable-location-replacement": "true", "store-limit-version": "v1",
	})
}

// defaultSchedulers are the schedulers a new PD runs.
var defaultSchedulers = []string{"balance-hot-region-scheduler", "balance-leader-scheduler",
	"balance-region-scheduler", "evict-slow-store-scheduler"}

func (c *Cluster) getSchedulers(w http.ResponseWriter, _ *http.Request) {
	names := slices.Clone(defaultSchedulers)
	if len(c.evicting) > 0 {
		names = append(names, pdapi.EvictLeaderScheduler)
		slices.Sort(names)
	}
	writeJSON(w, http.StatusOK, names)
}

// postSchedulers: POST /schedulers; the fake knows only the evict-leader
// scheduler.
func (c *Cluster) postSchedulers(w http.ResponseWriter, r *http.Request) {
	input, ok := readBody(w, r)
	if !ok {
		return
	}
	name, ok := input["name"].(string)
	if !ok {
		writeJSON(w, http.StatusBadRequest, "missing scheduler name")
		return
	}
	if name != pdapi.EvictLeaderScheduler {
		writeJSON(w, http.StatusBadRequest, "unknown scheduler")
		return
	}
	f, ok := input["store_id"].(float64)
	if !ok {
		writeJSON(w, http.StatusBadRequest, "missing store id")
		return
	}
	id := uint64(f)
	if _, ok := c.stores[id]; !ok {
		writeJSON(w, http.StatusInternalServerError, fmt.Sprintf("[PD:core:ErrStoreNotFound]store %d not found", id))
		return
	}
	existed := len(c.evicting) > 0
	c.evicting[id] = true
	if existed {
		writeJSON(w, http.StatusOK, "The scheduler has been applied to the store.")
		return
	}
	writeJSON(w, http.StatusOK, "The scheduler is created.")
}

// deleteScheduler: DELETE /schedulers/evict-leader-scheduler-{id} releases
// one store (200 or 404, body null, as the proxied config answer);
// DELETE /schedulers/evict-leader-scheduler drops the whole scheduler.
func (c *Cluster) deleteScheduler(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if rest, ok := strings.CutPrefix(name, pdapi.EvictLeaderScheduler+"-"); ok {
		id, err := strconv.ParseUint(rest, 10, 64)
		if err != nil || !c.evicting[id] {
			writeJSON(w, http.StatusNotFound, nil)
			return
		}
		delete(c.evicting, id)
		writeJSON(w, http.StatusOK, nil)
		return
	}
	if name == pdapi.EvictLeaderScheduler && len(c.evicting) > 0 {
		clear(c.evicting)
		writeJSON(w, http.StatusOK, "The scheduler is removed.")
		return
	}
	writeJSON(w, http.StatusNotFound, "[PD:scheduler:ErrSchedulerNotFound]scheduler not found")
}

func (c *Cluster) getEvictLeaderConfig(w http.ResponseWriter, _ *http.Request) {
	if len(c.evicting) == 0 {
		http.Error(w, "scheduler not found", http.StatusNotFound)
		return
	}
	ranges := map[string][]map[string]string{}
	for id := range c.evicting {
		ranges[strconv.FormatUint(id, 10)] = []map[string]string{{"start-key": "", "end-key": ""}}
	}
	writeJSON(w, http.StatusOK, map[string]any{"store-id-ranges": ranges, "batch": c.evictBatch})
}

// getOperators: GET /operators lists running operators as strings, or as
// objects with ?object.
func (c *Cluster) getOperators(w http.ResponseWriter, r *http.Request) {
	_, objects := r.URL.Query()["object"]
	var strs []string
	var objs []pdapi.Operator
	for _, id := range slices.Sorted(maps.Keys(c.operators)) {
		op := c.operators[id]
		strs = append(strs, op.String())
		objs = append(objs, op.object())
	}
	if objects {
		writeJSON(w, http.StatusOK, objs)
		return
	}
	writeJSON(w, http.StatusOK, strs)
}

// postOperators: POST /operators, transfer-leader and transfer-peer.
func (c *Cluster) postOperators(w http.ResponseWriter, r *http.Request) {
	input, ok := readBody(w, r)
	if !ok {
		return
	}
	name, ok := input["name"].(string)
	if !ok {
		writeJSON(w, http.StatusBadRequest, "missing operator name")
		return
	}
	num := func(key string) (uint64, bool) {
		f, ok := input[key].(float64)
		return uint64(f), ok
	}
	regionID, ok := num("region_id")
	if name == "transfer-leader" || name == "transfer-peer" {
		if !ok {
			writeJSON(w, http.StatusBadRequest, "missing region id")
			return
		}
	}
	var (
		op     *operator
		status int
		msg    string
	)
	switch name {
	case "transfer-leader":
		to, ok := num("to_store_id")
		if !ok {
			writeJSON(w, http.StatusBadRequest, "missing store id to transfer leader to")
			return
		}
		op, status, msg = c.newTransferLeader(regionID, to)
	case "transfer-peer":
		from, ok := num("from_store_id")
		if !ok {
			writeJSON(w, http.StatusBadRequest, "invalid store id to transfer peer from")
			return
		}
		to, ok := num("to_store_id")
		if !ok {
			writeJSON(w, http.StatusBadRequest, "invalid store id to transfer peer to")
			return
		}
		op, status, msg = c.newTransferPeer(regionID, from, to)
	default:
		writeJSON(w, http.StatusBadRequest, "unknown operator")
		return
	}
	if op == nil {
		writeJSON(w, status, msg)
		return
	}
	c.operators[regionID] = op
	delete(c.records, regionID)
	writeJSON(w, http.StatusOK, "The operator is created.")
}

// getOperator: GET /operators/{region_id}, the running operator or the
// last finished one, as one string.
func (c *Cluster) getOperator(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("region_id"), 10, 64)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, err.Error())
		return
	}
	if op, ok := c.operators[id]; ok {
		writeJSON(w, http.StatusOK, "status: RUNNING, operator: "+op.String())
		return
	}
	if op, ok := c.records[id]; ok {
		writeJSON(w, http.StatusOK, "status: SUCCESS, operator: "+op.String())
		return
	}
	writeJSON(w, http.StatusInternalServerError, "[PD:operator:ErrOperatorNotFound]operator not found")
}
