package pdfake

import (
	"encoding/json"
	"maps"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/operator-dev/operator/subjects/tikv/pdapi"
)

// SetP99 sets the gRPC p99 latency, in milliseconds, that the fake
// Prometheus reports for the TiKV instance at statusAddress. NaN stands
// for an instance with no traffic (Prometheus answers "NaN").
func (c *Cluster) SetP99(statusAddress string, ms float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.p99Ms[statusAddress] = ms
}

// SetRaftLogLag sets the p99 raft log lag, in entries, that the fake
// Prometheus reports for the TiKV instance at statusAddress.
func (c *Cluster) SetRaftLogLag(statusAddress string, entries float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.logLag[statusAddress] = entries
}

// promSample is one series of an instant vector.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"` // [unix seconds, "value"]
}

// promQuery answers GET/POST /api/v1/query for the query forms
// subjects/tikv/tikvmetrics sends. Every live (heartbeating, not Tombstone)
// store is a scrape target whose `instance` is its status address.
func (c *Cluster) promQuery(w http.ResponseWriter, r *http.Request) {
	q := r.FormValue("query")
	at := c.now
	if t := r.FormValue("time"); t != "" {
		parsed, err := parsePromTime(t)
		if err != nil {
			writeProm(w, http.StatusBadRequest, map[string]any{"status": "error", "errorType": "bad_data", "error": err.Error()})
			return
		}
		at = parsed
	}
	value, errMsg := c.promSeries(q)
	if errMsg != "" {
		writeProm(w, http.StatusBadRequest, map[string]any{"status": "error", "errorType": "bad_data", "error": errMsg})
		return
	}
	aggregated := strings.Contains(squash(q), "by(instance)") || strings.Contains(squash(q), "by(le,instance)")
	result := []promSample{}
	for _, id := range slices.Sorted(maps.Keys(c.stores)) {
		s := c.stores[id]
		if !s.heartbeating || s.meta == pdapi.MetaTombstone {
			continue // not scraped: no series
		}
		v, ok := value(s)
		if !ok {
			continue
		}
		labels := map[string]string{"instance": s.statusAddress}
		if !aggregated {
			labels["job"] = "tikv"
			labels["__name__"] = metricName(q)
		}
		result = append(result, promSample{Metric: labels, Value: [2]any{json.Number(promTime(at)), formatPromValue(v)}})
	}
	sort.Slice(result, func(i, j int) bool { return result[i].Metric["instance"] < result[j].Metric["instance"] })
	writeProm(w, http.StatusOK, map[string]any{"status": "success", "data": map[string]any{"resultType": "vector", "result": result}})
}

// promSeries picks the model value for a query, or says why the fake
// refuses it.
func (c *Cluster) promSeries(q string) (func(*store) (float64, bool), string) {
	sq := squash(q)
	isQuantile := strings.Contains(sq, "histogram_quantile(")
	if isQuantile && !strings.Contains(sq, "sumby(le,instance)") {
		return nil, "pdfake: histogram_quantile over buckets that are not summed by (le, instance): " + q
	}
	switch {
	case isQuantile && strings.Contains(sq, "tikv_grpc_msg_duration_seconds_bucket") && strings.Contains(sq, `type!="kv_gc"`):
		return func(s *store) (float64, bool) {
			ms, ok := c.p99Ms[s.statusAddress]
			return ms / 1000, ok
		}, ""
	case isQuantile && strings.Contains(sq, "tikv_raftstore_log_lag_bucket"):
		return func(s *store) (float64, bool) {
			v, ok := c.logLag[s.statusAddress]
			return v, ok
		}, ""
	case !isQuantile && strings.Contains(sq, `tikv_store_size_bytes{type="available"}`):
		return func(s *store) (float64, bool) { return float64(s.available), true }, ""
	case !isQuantile && strings.Contains(sq, `tikv_store_size_bytes{type="capacity"}`):
		return func(s *store) (float64, bool) { return float64(s.capacity), true }, ""
	case !isQuantile && strings.Contains(sq, `tikv_raftstore_region_count{type="leader"}`):
		return func(s *store) (float64, bool) { return float64(c.leaderCount(s.id)), true }, ""
	case !isQuantile && strings.Contains(sq, `tikv_raftstore_region_count{type="region"}`):
		return func(s *store) (float64, bool) { return float64(c.peerCount(s.id)), true }, ""
	}
	return nil, "pdfake: unsupported query: " + q
}

// squash removes whitespace so query matching ignores formatting.
func squash(q string) string {
	return strings.Join(strings.Fields(q), "")
}

// metricName returns the first tikv_ metric named in the query.
func metricName(q string) string {
	i := strings.Index(q, "tikv_")
	if i < 0 {
		return ""
	}
	j := strings.IndexAny(q[i:], "{[( ")
	if j < 0 {
		return q[i:]
	}
	return q[i : i+j]
}

func formatPromValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// promTime formats a time as Prometheus does in sample values: unix
// seconds with millisecond precision.
func promTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', -1, 64)
}

// parsePromTime reads the time parameter: unix seconds or RFC 3339.
func parsePromTime(s string) (time.Time, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC(), nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

func writeProm(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}
