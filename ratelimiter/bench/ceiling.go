package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	neturl "net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ceilingScript is the cheapest script Redis can run: what an EVALSHA
// costs on its own, with no limiter logic and no client work.
const ceilingScript = "return 1"

// Ceiling measures how many un-pipelined EVALSHA calls per second the Redis
// at url answers from concurrency connections, each with one call in
// flight, as `redis-benchmark -c N evalsha` does: the most decisions per
// second a limiter that sends one script per decision could reach.
func Ceiling(ctx context.Context, url string, concurrency int, d time.Duration) (float64, error) {
	opts, err := parseRedisURL(url)
	if err != nil {
		return 0, fmt.Errorf("ceiling: %w", err)
	}
	conns := make([]*respConn, concurrency)
	defer func() {
		for _, c := range conns {
			if c != nil {
				_ = c.conn.Close()
			}
		}
	}()
	var sha string
	for i := range conns {
		if conns[i], err = dialRESP(ctx, opts); err != nil {
			return 0, fmt.Errorf("ceiling: %w", err)
		}
	}
	if sha, err = conns[0].scriptLoad(ceilingScript); err != nil {
		return 0, fmt.Errorf("ceiling: %w", err)
	}
	cmd := []byte("*3\r\n$7\r\nEVALSHA\r\n$40\r\n" + sha + "\r\n$1\r\n0\r\n")
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		n    atomic.Int64
		wg   sync.WaitGroup
		errs = make([]error, len(conns))
	)
	start := time.Now()
	for i, c := range conns {
		wg.Go(func() {
			for ctx.Err() == nil {
				if _, err := c.conn.Write(cmd); err != nil {
					errs[i] = err
					return
				}
				if _, err := c.readLine(); err != nil {
					errs[i] = err
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return 0, fmt.Errorf("ceiling: %w", err)
	}
	return float64(n.Load()) / elapsed.Seconds(), nil
}

// respConn is a bare RESP connection: the ceiling must not pay for a
// client library's work, or it would measure the client.
type respConn struct {
	conn net.Conn
	br   *bufio.Reader
}

// redisTarget is what a redis:// or rediss:// URL names.
type redisTarget struct {
	Addr, Username, Password string
	DB                       int
	TLS                      bool
}

// parseRedisURL reads redis://[user:password@]host[:port][/db] (rediss://
// for TLS); the bench parses it itself so that it depends on no Redis
// client.
func parseRedisURL(s string) (redisTarget, error) {
	u, err := neturl.Parse(s)
	if err != nil {
		return redisTarget{}, fmt.Errorf("redis url: %w", err)
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return redisTarget{}, fmt.Errorf("redis url %q: want redis:// or rediss://", s)
	}
	t := redisTarget{Addr: u.Host, TLS: u.Scheme == "rediss"}
	if u.Port() == "" {
		t.Addr = net.JoinHostPort(u.Hostname(), "6379")
	}
	if u.User != nil {
		t.Username = u.User.Username()
		t.Password, _ = u.User.Password()
	}
	if db := strings.Trim(u.Path, "/"); db != "" {
		if t.DB, err = strconv.Atoi(db); err != nil {
			return redisTarget{}, fmt.Errorf("redis url %q: database %q is not a number", s, db)
		}
	}
	return t, nil
}

func dialRESP(ctx context.Context, opts redisTarget) (*respConn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", opts.Addr)
	if err != nil {
		return nil, err
	}
	if opts.TLS {
		host, _, _ := net.SplitHostPort(opts.Addr)
		conn = tls.Client(conn, &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12})
	}
	c := &respConn{conn: conn, br: bufio.NewReader(conn)}
	if opts.Password != "" {
		args := []string{"AUTH", opts.Password}
		if opts.Username != "" {
			args = []string{"AUTH", opts.Username, opts.Password}
		}
		if _, err := c.do(args...); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("auth: %w", err)
		}
	}
	if opts.DB != 0 {
		if _, err := c.do("SELECT", strconv.Itoa(opts.DB)); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("select: %w", err)
		}
	}
	return c, nil
}

func (c *respConn) do(args ...string) (string, error) {
	b := []byte("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b = append(b, "$"+strconv.Itoa(len(a))+"\r\n"+a+"\r\n"...)
	}
	if _, err := c.conn.Write(b); err != nil {
		return "", err
	}
	return c.readLine()
}

func (c *respConn) scriptLoad(src string) (string, error) {
	line, err := c.do("SCRIPT", "LOAD", src)
	if err != nil {
		return "", err
	}
	// A bulk string: "$40" then the sha on the next line.
	if len(line) == 0 || line[0] != '$' {
		return "", fmt.Errorf("SCRIPT LOAD answered %q", line)
	}
	return c.readLine()
}

// readLine reads one reply line; an error reply is an error.
func (c *respConn) readLine() (string, error) {
	line, err := c.br.ReadString('\n')
	if err != nil {
		return "", err
	}
	if len(line) < 2 {
		return "", fmt.Errorf("short reply %q", line)
	}
	line = line[:len(line)-2]
	if line[0] == '-' {
		return "", errors.New(line[1:])
	}
	return line, nil
}
