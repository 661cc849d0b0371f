package pdfake_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/operator-dev/operator/subjects/tikv/pdapi/pdfake"
)

type promAnswer struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	} `json:"data"`
}

func promGet(t *testing.T, base, query string, status int) promAnswer {
	t.Helper()
	data := get(t, base+"/api/v1/query?"+url.Values{"query": {query}}.Encode(), status)
	var a promAnswer
	if err := json.Unmarshal(data, &a); err != nil {
		t.Fatalf("%v: %s", err, data)
	}
	return a
}

func TestPrometheusAnswers(t *testing.T) {
	c, _ := threeStores(t, pdfake.Options{Start: start})
	c.SetP99("tikv0:20180", 12.5)
	c.SetP99("tikv1:20180", 250)
	c.StopHeartbeats(3) // tikv2 is no longer scraped
	c.Step(start.Add(time.Minute))
	srv := c.Start(t)

	a := promGet(t, srv.URL, `histogram_quantile(0.99, sum by (le, instance) (rate(tikv_grpc_msg_duration_seconds_bucket{type!="kv_gc"}[1m])))`, http.StatusOK)
	if a.Status != "success" || a.Data.ResultType != "vector" || len(a.Data.Result) != 2 {
		t.Fatalf("answer %+v", a)
	}
	first := a.Data.Result[0]
	if first.Metric["instance"] != "tikv0:20180" || first.Value[1] != "0.0125" || first.Value[0] != float64(t0+60) {
		t.Fatalf("first sample %+v", first)
	}
	if len(first.Metric) != 1 {
		t.Fatalf("an aggregated series carries labels %v", first.Metric)
	}

	a = promGet(t, srv.URL, `max by (instance) (tikv_store_size_bytes{type="capacity"})`, http.StatusOK)
	if len(a.Data.Result) != 2 || a.Data.Result[1].Value[1] != "107374182400" {
		t.Fatalf("capacity %+v", a.Data.Result)
	}
}

// TestPrometheusRefusesMistakes: the fake refuses query forms that would
// silently give wrong numbers from a real Prometheus.
func TestPrometheusRefusesMistakes(t *testing.T) {
	c, _ := threeStores(t, pdfake.Options{Start: start})
	srv := c.Start(t)
	for _, q := range []string{
		`histogram_quantile(0.99, rate(tikv_grpc_msg_duration_seconds_bucket[1m]))`,               // no sum by (le)
		`histogram_quantile(0.99, sum by (le) (rate(tikv_grpc_msg_duration_seconds_bucket[1m])))`, // loses instance
		`tikv_store_size_bytes{type="used"}`,                                                      // not a query the client sends
		`up{instance=~"tikv0.*20160"}`,                                                            // joined on the gRPC port
	} {
		a := promGet(t, srv.URL, q, http.StatusBadRequest)
		if a.Status != "error" || a.ErrorType != "bad_data" || !strings.Contains(a.Error, "pdfake") {
			t.Errorf("%s: %+v", q, a)
		}
	}
}
