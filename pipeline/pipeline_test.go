package pipeline

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/operator-dev/operator/internal/redistest"
	"github.com/operator-dev/operator/schemas"
	"github.com/operator-dev/operator/subjects"
	"github.com/operator-dev/operator/subjects/ratelimiter"
	"github.com/operator-dev/operator/subjects/tikv"
	"github.com/operator-dev/operator/subjects/tikv/pdapi"
	"github.com/operator-dev/operator/subjects/tikv/pdapi/pdfake"
)

// TestPipelineObservesBothSubjects runs the one-process pipeline on a real
// redis-server with a fake PD, and waits for an observation of each subject
// with the state every node and store is in.
func TestPipelineObservesBothSubjects(t *testing.T) {
	srv := redistest.Start(t)
	pd := pdfake.New(pdfake.Options{Start: time.Now()})
	for id := uint64(1); id <= 3; id++ {
		pd.AddStore(id, "tikv:20160", "tikv:20180", 100<<30, 80<<30)
		pd.Heartbeat(id, time.Now())
	}
	pd.AddRegion(1, 1, 1, 2, 3)
	pdsrv := pd.Start(t)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sb, err := ratelimiter.StartSandbox(ctx, ratelimiter.SandboxConfig{RedisURL: srv.URL(), Nodes: 2})
	if err != nil {
		t.Fatal(err)
	}
	rl, err := sb.Deployment("demo", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	tk, err := tikv.Deployment(tikv.DeploymentConfig{Instance: "tikv", Interval: time.Second, PD: pdapi.Config{URLs: []string{pdsrv.URL}}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Start(ctx, Config{Store: t.TempDir(), Deployments: []*subjects.Deployment{rl, tk}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	runCtx, stop := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	go func() { runDone <- s.Run(runCtx) }()

	var mu sync.Mutex
	seen := map[string]schemas.Observation{}
	tailDone := make(chan error, 1)
	go func() {
		tailDone <- s.Bus.Tail(runCtx, "operator.obs.>", time.Time{}, func(_ string, e event.Event, err error) {
			var o schemas.Observation
			if err != nil || json.Unmarshal(e.Data(), &o) != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			seen[o.Subject] = o
		})
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		rl, okRL := seen["ratelimiter"]
		tk, okTK := seen["tikv"]
		mu.Unlock()
		if okRL && okTK {
			var rs struct {
				Nodes []struct {
					ID        string `json:"id"`
					Reachable bool   `json:"reachable"`
				} `json:"nodes"`
			}
			var ts struct {
				Stores []struct {
					StateName string `json:"state_name"`
				} `json:"stores"`
			}
			_ = json.Unmarshal(rl.State, &rs)
			_ = json.Unmarshal(tk.State, &ts)
			if len(rs.Nodes) == 2 && rs.Nodes[0].Reachable && rs.Nodes[1].Reachable && len(ts.Stores) == 3 && ts.Stores[0].StateName == "Up" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no complete observations of both subjects: %+v", seen)
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	if err := <-runDone; err != nil {
		t.Fatalf("run: %v", err)
	}
	if err := <-tailDone; err != nil {
		t.Fatalf("tail: %v", err)
	}
}
