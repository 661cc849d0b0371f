package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Server is a redis-server process owned by a test.
type Server struct {
	tb   testing.TB
	Addr string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// Binary returns the path of redis-server. When it is missing the test is
// skipped, or fails when the CI environment variable is "true".
func Binary(tb testing.TB) string {
	tb.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("redis-server not found in PATH; CI must install it: %v", err)
		}
		tb.Skipf("redis-server not found in PATH: %v", err)
	}
	return path
}

// Start starts redis-server on a free loopback port with persistence off and
// stops it when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{tb: tb, dir: tb.TempDir()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("find a free port: %v", err)
	}
	s.Addr = ln.Addr().String()
	_ = ln.Close()
	s.Restart()
	tb.Cleanup(s.Stop)
	return s
}

// Restart starts the server again on the same port after Stop; it is a no-op
// while the server runs. It waits until the server answers PING.
func (s *Server) Restart() {
	s.tb.Helper()
	if s.cmd != nil {
		return
	}
	_, port, _ := net.SplitHostPort(s.Addr)
	cmd := exec.Command(Binary(s.tb),
		"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--logfile", filepath.Join(s.dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("start redis-server: %v", err)
	}
	s.cmd = cmd
	s.done = make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(s.done)

	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer func() { _ = c.Close() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		select {
		case <-s.done:
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			s.tb.Fatalf("redis-server exited at start: %s", log)
		default:
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("redis-server on %s did not answer PING: %v", s.Addr, err)
		}
		time.Sleep(10 * time.Millisecond) // polling a process we just started
	}
}

// Stop kills the server and waits for it to exit. It is safe to call twice.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// URL is the server's redis:// URL.
func (s *Server) URL() string { return "redis://" + s.Addr }

// Backend is a Redis-compatible server for a test suite.
type Backend struct {
	Name string
	// Start starts a fresh server and returns its address.
	Start func(tb testing.TB) string
}

// Backends returns the two backends every limiter script must pass on:
// miniredis (the embedded store of "operator up") and a real redis-server.
func Backends() []Backend {
	return []Backend{
		{Name: "miniredis", Start: func(tb testing.TB) string { return StartMini(tb).Addr() }},
		{Name: "redis-server", Start: func(tb testing.TB) string { return Start(tb).Addr }},
	}
}

// StartMini starts miniredis on a loopback port and closes it when the test
// ends.
func StartMini(tb testing.TB) *miniredis.Miniredis {
	tb.Helper()
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		tb.Fatalf("start miniredis: %v", err)
	}
	tb.Cleanup(m.Close)
	return m
}

// Client returns a go-redis client for addr, closed when the test ends.
func Client(tb testing.TB, addr string) *redis.Client {
	tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 64, MaxRetries: -1,
		DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// String describes the server for logs.
func (s *Server) String() string { return fmt.Sprintf("redis-server %s", s.Addr) }
