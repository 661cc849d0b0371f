package main

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/operator-dev/operator/internal/bus/bustest"
	"github.com/operator-dev/operator/schemas"
	"github.com/operator-dev/operator/subjects/tikv/pdapi/pdfake"
)

// TestObserveTikvPublishes runs `operator observe tikv` against a fake PD
// and Prometheus and reads its observations back from the bus.
func TestObserveTikvPublishes(t *testing.T) {
	c := pdfake.New(pdfake.Options{Start: time.Now()})
	c.AddStore(1, "tikv0:20160", "tikv0:20180", 100<<30, 60<<30)
	c.AddRegion(101, 1, 1)
	c.SetP99("tikv0:20180", 12)
	srv := c.Start(t)
	b := bustest.New(t, bustest.WithListener)

	var (
		mu   sync.Mutex
		obs  []schemas.Observation
		errs []string
	)
	tctx, stopTail := context.WithCancel(context.Background())
	tailDone := make(chan struct{})
	go func() {
		defer close(tailDone)
		_ = b.Tail(tctx, "operator.obs.tikv.>", time.Now().Add(-time.Minute), func(_ string, e event.Event, err error) {
			var o schemas.Observation
			mu.Lock()
			defer mu.Unlock()
			if err != nil || json.Unmarshal(e.Data(), &o) != nil {
				errs = append(errs, "undecodable observation")
				return
			}
			obs = append(obs, o)
		})
	}()
	t.Cleanup(func() { stopTail(); <-tailDone })

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := run(t, ctx, "observe", "tikv", "--nats", b.ClientURL(), "--instance", "c1",
			"--pd", srv.URL, "--prometheus", srv.URL, "--interval", "300ms")
		done <- err
	}()
	// A poll can time out on a loaded machine (its bound is 80 % of the
	// interval) and report it: wait for one that read everything.
	complete := func() *schemas.Observation {
		for i := range obs {
			if len(obs[i].Observer.Errors) == 0 {
				return &obs[i]
			}
		}
		return nil
	}
	bustest.Eventually(t, 15*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(obs) >= 2 && complete() != nil
	}, "two observations of tikv/c1, one complete")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("observe tikv: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	o := *complete()
	if o.Subject != "tikv" || o.Instance != "c1" || o.Observer.IntervalMS != 300 {
		t.Fatalf("observation %+v", o)
	}
	if s := string(o.State); !strings.Contains(s, `"status_address":"tikv0:20180"`) || !strings.Contains(s, `"p99_ms":12`) {
		t.Fatalf("state %s", s)
	}
}

func TestObserveTikvNeedsPD(t *testing.T) {
	_, err := run(t, context.Background(), "observe", "tikv", "--instance", "c1")
	if err == nil || !strings.Contains(err.Error(), "pd") {
		t.Fatalf("err = %v, want a refusal naming --pd", err)
	}
}
