package main

import (
	"context"
	"net"
	"os"
	"runtime/pprof"
	"time"

	"github.com/operator-dev/operator/ratelimiter"
)

func main() {
	rdb, _ := ratelimiter.NewRedisClient("redis://127.0.0.1:6392/0", 100*time.Millisecond)
	l, _ := ratelimiter.New(rdb, ratelimiter.Config{NodeID: "p", DefaultLimit: 1000000, DefaultAlgorithm: ratelimiter.GCRA})
	ln, _ := net.Listen("tcp", "127.0.0.1:18099")
	ctx, cancel := context.WithTimeout(context.Background(), 14*time.Second)
	defer cancel()
	go l.Run(ctx)
	f, _ := os.Create("/tmp/rltest/server.prof")
	go func() {
		time.Sleep(3 * time.Second)
		pprof.StartCPUProfile(f)
		time.Sleep(8 * time.Second)
		pprof.StopCPUProfile()
		f.Close()
	}()
	ratelimiter.Serve(ctx, ln, ratelimiter.NewHandler(l, ratelimiter.HandlerOptions{}))
}
