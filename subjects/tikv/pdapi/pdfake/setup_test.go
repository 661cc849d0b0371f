package pdfake_test

import (
	"context"
	"testing"
	"time"

	"github.com/operator-dev/operator/subjects/tikv/pdapi"
	"github.com/operator-dev/operator/subjects/tikv/pdapi/pdfake"
)

const (
	gib = 1 << 30
	t0  = 1767225600 // 2026-01-01T00:00:00Z
)

var start = time.Unix(t0, 0).UTC()

// threeStores returns a cluster of stores 1-3 (tikv0-2) and regions
// 101-109, three led by each store, each with a peer on every store; it is
// served, and a client points at it.
func threeStores(t *testing.T, opts pdfake.Options) (*pdfake.Cluster, *pdapi.Client) {
	t.Helper()
	c := pdfake.New(opts)
	for i, host := range []string{"tikv0", "tikv1", "tikv2"} {
		c.AddStore(uint64(i+1), host+":20160", host+":20180", 100*gib, 60*gib)
	}
	for r := uint64(101); r <= 109; r++ {
		c.AddRegion(r, (r-101)/3+1, 1, 2, 3)
	}
	srv := c.Start(t)
	return c, client(t, srv.URL)
}

func client(t *testing.T, urls ...string) *pdapi.Client {
	t.Helper()
	pc, err := pdapi.New(pdapi.Config{URLs: urls, RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return pc
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// storeByID fetches one store through the client and fails the test if
// it cannot.
func storeByID(t *testing.T, pc *pdapi.Client, id uint64) pdapi.Store {
	t.Helper()
	s, err := pc.Store(testCtx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
