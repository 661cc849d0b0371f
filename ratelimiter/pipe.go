package ratelimiter

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults of the decision pipe.
const (
	// pipeConns is how many connections a node keeps for decisions: enough
	// that one slow write does not hold every decision, few enough that the
	// calls queued on each share a write.
	pipeConns = 2
	// pipeMaxBatch bounds the decisions one write carries.
	pipeMaxBatch = 256
	// pipeQueue bounds the decisions waiting for a write on one
	// connection; past it a decision fails as Redis unavailable.
	pipeQueue = 4096
)

// errPipeClosed is returned for decisions sent after Close.
var errPipeClosed = errors.New("decision pipe closed")

// A pipe sends decision scripts to one Redis over a few long-lived
// connections. On each connection, the caller that finds no write in
// progress writes at once, its own call and every call queued meanwhile
// (flat combining: no hand-off to another goroutine on an idle node);
// calls that arrive during a write queue up for the next one, which the
// connection's writer goroutine sends when the caller has written one
// batch. A reader goroutine reads the replies in order. Under load many
// decisions share one system call on each side. Each
// decision is still its own EVALSHA, run atomically by Redis; a batch never
// merges two. A decision costs no allocation: calls are pooled and
// commands are encoded straight into the connection's buffer.
//
// It speaks RESP itself, for the one command shape it needs, instead of
// going through go-redis, whose per-command objects and argument boxing
// cost more than the decision. It is safe for concurrent use; Close stops
// its goroutines.
type pipe struct {
	opts    *redis.Options
	timeout time.Duration
	next    atomic.Uint32
	calls   sync.Pool

	mu     sync.Mutex
	closed bool
	slots  [pipeConns]*pipeConn
}

// decisionReq is one decision script call.
type decisionReq struct {
	sha      string
	key      string
	suffix   string
	seq      bool  // the sliding window log's third key
	now      int64 // microseconds; -1 lets the script read Redis TIME
	limit    int64
	windowUS int64
	cost     int64
	peek     bool
}

// pipeCall is one decision in flight. state moves from pending to
// completed (the reader answered) or abandoned (the caller left); whoever
// moves it last returns the call to the pool.
type pipeCall struct {
	req   decisionReq
	v     [8]int64
	n     int
	err   error
	state atomic.Int32
	done  chan struct{}
	// timer bounds the wait; kept with the call so a decision allocates
	// no timer.
	timer *time.Timer
}

const (
	callPending = iota
	callCompleted
	callGone
)

func newPipe(opts *redis.Options, timeout time.Duration) *pipe {
	p := &pipe{opts: opts, timeout: timeout}
	p.calls.New = func() any {
		t := time.NewTimer(time.Hour)
		t.Stop()
		return &pipeCall{done: make(chan struct{}, 1), timer: t}
	}
	return p
}

// run sends one decision and waits for its reply, ctx, or timeout.
func (p *pipe) run(ctx context.Context, req decisionReq, timeout time.Duration) ([8]int64, error) {
	pc, err := p.conn(ctx)
	if err != nil {
		return [8]int64{}, err
	}
	c := p.calls.Get().(*pipeCall)
	c.req, c.n, c.err = req, 0, nil
	c.state.Store(callPending)
	if err := pc.enqueue(c); err != nil {
		p.calls.Put(c)
		return [8]int64{}, err
	}
	c.timer.Reset(timeout)
	var gone error
	select {
	case <-c.done:
	case <-ctx.Done():
		gone = ctx.Err()
	case <-c.timer.C:
		gone = context.DeadlineExceeded
	}
	c.timer.Stop()
	if gone != nil {
		if c.state.CompareAndSwap(callPending, callGone) {
			return [8]int64{}, gone // the reader recycles it
		}
		<-c.done // answered meanwhile
	}
	v, n, err := c.v, c.n, c.err
	p.calls.Put(c)
	if err == nil && n != 8 {
		err = fmt.Errorf("decision script returned %d values, want 8", n)
	}
	return v, err
}

// conn returns a live connection, dialing one for an empty or dead slot.
func (p *pipe) conn(ctx context.Context) (*pipeConn, error) {
	i := p.next.Add(1) % pipeConns
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errPipeClosed
	}
	if pc := p.slots[i]; pc != nil && !pc.isDead() {
		return pc, nil
	}
	pc, err := p.dial(ctx)
	if err != nil {
		return nil, err
	}
	p.slots[i] = pc
	return pc, nil
}

// Close stops every connection and its goroutines; calls in flight fail.
func (p *pipe) Close() {
	p.mu.Lock()
	p.closed = true
	slots := p.slots
	p.mu.Unlock()
	for _, pc := range slots {
		if pc != nil {
			pc.fail(errPipeClosed)
			pc.wg.Wait()
		}
	}
}

// pipeConn is one connection with its writer and reader.
type pipeConn struct {
	p        *pipe
	conn     net.Conn
	inflight chan *pipeCall // written, awaiting replies, in order
	kick     chan struct{}  // hands the writing over to writeLoop
	dead     chan struct{}
	failOnce sync.Once
	err      error // why it died; set before dead is closed
	wg       sync.WaitGroup

	mu      sync.Mutex
	pending []*pipeCall // queued for the next write
	writing bool        // a goroutine is writing; it takes pending next
	// spare and buf belong to whoever writes.
	spare []*pipeCall
	buf   []byte
}

// errPipeBusy refuses a call when a connection already has pipeQueue
// calls waiting to be written: Redis is not keeping up.
var errPipeBusy = errors.New("decision pipe full")

// enqueue queues c for writing, and writes now when no one else is.
func (pc *pipeConn) enqueue(c *pipeCall) error {
	pc.mu.Lock()
	switch {
	case pc.isDead():
		pc.mu.Unlock()
		return pc.err
	case len(pc.pending) >= pipeQueue:
		pc.mu.Unlock()
		return fmt.Errorf("%w: %w", ErrUnavailable, errPipeBusy)
	}
	pc.pending = append(pc.pending, c)
	if pc.writing {
		pc.mu.Unlock()
		return nil
	}
	pc.writing = true
	pc.mu.Unlock()
	pc.flush(1)
	return nil
}

// flush writes the pending calls, one batch a round, until none is left or
// rounds have been written; then, if calls are still pending, it hands the
// writing to writeLoop, so a caller never writes for long for others.
func (pc *pipeConn) flush(rounds int) {
	for r := 0; ; r++ {
		pc.mu.Lock()
		batch := pc.pending
		if len(batch) == 0 || pc.isDead() {
			pc.writing = false
			pc.mu.Unlock()
			return
		}
		if r >= rounds {
			pc.mu.Unlock()
			select {
			case pc.kick <- struct{}{}:
			default: // already kicked
			}
			return
		}
		pc.pending, pc.spare = pc.spare[:0], nil
		pc.mu.Unlock()
		if !pc.write(batch) {
			return
		}
		clear(batch)
		pc.spare = batch[:0]
	}
}

// write sends one batch; false means the connection died.
func (pc *pipeConn) write(batch []*pipeCall) bool {
	buf := pc.buf[:0]
	for i, c := range batch {
		buf = appendDecision(buf, &c.req)
		select {
		case pc.inflight <- c:
		case <-pc.dead:
			// The reader fails what is in flight; the rest is ours.
			for _, c := range batch[i:] {
				pc.complete(c, pc.err)
			}
			return false
		}
	}
	pc.buf = buf
	_ = pc.conn.SetWriteDeadline(time.Now().Add(max(pc.p.timeout, time.Second)))
	if _, err := pc.conn.Write(buf); err != nil {
		pc.fail(err) // the reader fails what it was waiting for
		return false
	}
	return true
}

func (p *pipe) dial(ctx context.Context) (*pipeConn, error) {
	ctx, cancel := context.WithTimeout(ctx, max(p.timeout, time.Second))
	defer cancel()
	var conn net.Conn
	var err error
	if p.opts.Dialer != nil {
		conn, err = p.opts.Dialer(ctx, p.opts.Network, p.opts.Addr)
	} else {
		network := p.opts.Network
		if network == "" {
			network = "tcp"
		}
		var d net.Dialer
		conn, err = d.DialContext(ctx, network, p.opts.Addr)
		if err == nil && p.opts.TLSConfig != nil {
			conn = tls.Client(conn, p.opts.TLSConfig)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("dial redis: %w", err)
	}
	br := bufio.NewReaderSize(conn, 32<<10)
	if err := handshake(ctx, conn, br, p.opts); err != nil {
		_ = conn.Close()
		return nil, err
	}
	pc := &pipeConn{p: p, conn: conn, inflight: make(chan *pipeCall, 2*pipeQueue), kick: make(chan struct{}, 1),
		dead: make(chan struct{}), buf: make([]byte, 0, 16<<10)}
	pc.wg.Add(2)
	go pc.writeLoop()
	go pc.readLoop(br)
	return pc, nil
}

// handshake authenticates and selects the database, as go-redis does for
// the same URL.
func handshake(ctx context.Context, conn net.Conn, br *bufio.Reader, opts *redis.Options) error {
	var cmds [][]string
	if opts.Password != "" {
		if opts.Username != "" {
			cmds = append(cmds, []string{"AUTH", opts.Username, opts.Password})
		} else {
			cmds = append(cmds, []string{"AUTH", opts.Password})
		}
	}
	if opts.DB != 0 {
		cmds = append(cmds, []string{"SELECT", strconv.Itoa(opts.DB)})
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
		defer func() { _ = conn.SetDeadline(time.Time{}) }()
	}
	for _, args := range cmds {
		var b []byte
		b = appendArrayHeader(b, len(args))
		for _, a := range args {
			b = appendBulk(b, a)
		}
		if _, err := conn.Write(b); err != nil {
			return fmt.Errorf("redis %s: %w", args[0], err)
		}
		var c pipeCall
		if err := readReply(br, &c); err != nil {
			return fmt.Errorf("redis %s: %w", args[0], err)
		}
		if c.err != nil {
			return fmt.Errorf("redis %s: %w", args[0], c.err)
		}
	}
	return nil
}

func (pc *pipeConn) isDead() bool {
	select {
	case <-pc.dead:
		return true
	default:
		return false
	}
}

// fail kills the connection once: the loops stop, and every call written
// or queued gets err.
func (pc *pipeConn) fail(err error) {
	pc.failOnce.Do(func() {
		pc.mu.Lock()
		pc.err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		close(pc.dead)
		queued := pc.pending
		pc.pending = nil
		pc.mu.Unlock()
		_ = pc.conn.Close()
		for _, c := range queued {
			pc.complete(c, pc.err)
		}
	})
}

// writeLoop takes the writing over from a caller that has written its
// batch while calls kept coming.
func (pc *pipeConn) writeLoop() {
	defer pc.wg.Done()
	for {
		select {
		case <-pc.kick:
			pc.flush(math.MaxInt)
		case <-pc.dead:
			return
		}
	}
}

func (pc *pipeConn) readLoop(br *bufio.Reader) {
	defer pc.wg.Done()
	for {
		var c *pipeCall
		select {
		case c = <-pc.inflight:
		case <-pc.dead:
			for {
				select {
				case c := <-pc.inflight:
					pc.complete(c, pc.err)
				default:
					return
				}
			}
		}
		// A reply is due: bound the wait, so a Redis that stops answering
		// kills the connection instead of holding its calls forever.
		_ = pc.conn.SetReadDeadline(time.Now().Add(max(pc.p.timeout, time.Second)))
		c.n, c.err = 0, nil
		if err := readReply(br, c); err != nil {
			pc.fail(err)
			pc.complete(c, pc.err)
			continue // drain the rest through the dead case
		}
		pc.complete(c, c.err)
	}
}

// complete hands a call its outcome, or recycles it when its caller left.
func (pc *pipeConn) complete(c *pipeCall, err error) {
	c.err = err
	if c.state.CompareAndSwap(callPending, callCompleted) {
		c.done <- struct{}{}
		return
	}
	pc.p.calls.Put(c)
}

// appendDecision encodes EVALSHA sha numkeys keys... now limit window cost
// mode, with the keys composed in place.
func appendDecision(b []byte, c *decisionReq) []byte {
	nkeys := 2
	if c.seq {
		nkeys = 3
	}
	b = appendArrayHeader(b, 3+nkeys+5)
	b = appendBulk(b, "EVALSHA")
	b = appendBulk(b, c.sha)
	b = appendBulkInt(b, int64(nkeys))
	b = appendKey(b, c.key, c.suffix)
	b = appendKey(b, c.key, "block")
	if c.seq {
		b = appendKey(b, c.key, "swl:seq")
	}
	if c.now < 0 {
		b = append(b, "$0\r\n\r\n"...)
	} else {
		b = appendBulkInt(b, c.now)
	}
	b = appendBulkInt(b, c.limit)
	b = appendBulkInt(b, c.windowUS)
	b = appendBulkInt(b, c.cost)
	if c.peek {
		return appendBulk(b, "peek")
	}
	return appendBulk(b, "check")
}

// appendKey encodes the Redis key ratelimit:{key}:suffix as a bulk string.
func appendKey(b []byte, key, suffix string) []byte {
	n := len(keyPrefix) + len(key) + len(suffix) + 3
	b = append(b, '$')
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, "\r\n"...)
	b = append(b, keyPrefix...)
	b = append(b, '{')
	b = append(b, key...)
	b = append(b, "}:"...)
	b = append(b, suffix...)
	return append(b, "\r\n"...)
}

func appendArrayHeader(b []byte, n int) []byte {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, "\r\n"...)
}

func appendBulk(b []byte, s string) []byte {
	b = append(b, '$')
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, "\r\n"...)
	b = append(b, s...)
	return append(b, "\r\n"...)
}

func appendBulkInt(b []byte, v int64) []byte {
	var tmp [20]byte
	digits := strconv.AppendInt(tmp[:0], v, 10)
	b = append(b, '$')
	b = strconv.AppendInt(b, int64(len(digits)), 10)
	b = append(b, "\r\n"...)
	b = append(b, digits...)
	return append(b, "\r\n"...)
}

// readReply reads one reply into c: an array of integers fills c.v (up to
// eight; c.n counts them), an error reply sets c.err. Other replies are
// read and skipped. A returned error means the connection is unusable.
func readReply(br *bufio.Reader, c *pipeCall) error {
	line, err := readLine(br)
	if err != nil {
		return err
	}
	switch line[0] {
	case '-':
		c.err = replyErrorOf(line[1:])
		return nil
	case '+', ':':
		return nil
	case '$':
		return skipBulk(br, line)
	case '*':
		n, ok := parseInt(line[1:])
		if !ok {
			return fmt.Errorf("bad array header %q", line)
		}
		for i := int64(0); i < n; i++ {
			item, err := readLine(br)
			if err != nil {
				return err
			}
			switch item[0] {
			case ':':
				v, ok := parseInt(item[1:])
				if !ok {
					return fmt.Errorf("bad integer %q", item)
				}
				if c.n < len(c.v) {
					c.v[c.n] = v
				}
				c.n++
			case '$':
				if err := skipBulk(br, item); err != nil {
					return err
				}
				c.n++
			case '-':
				c.n++
			default:
				return fmt.Errorf("unexpected %q in a decision reply", item)
			}
		}
		return nil
	}
	return fmt.Errorf("bad reply %q", line)
}

// readLine returns one line without its CRLF; the slice is valid until the
// next read.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("bad reply line %q", line)
	}
	return line[:len(line)-2], nil
}

func skipBulk(br *bufio.Reader, header []byte) error {
	n, ok := parseInt(header[1:])
	if !ok {
		return fmt.Errorf("bad bulk header %q", header)
	}
	if n < 0 {
		return nil // a null bulk string
	}
	_, err := br.Discard(int(n) + 2)
	return err
}

// parseInt parses a RESP integer without allocating.
func parseInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var v int64
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		v = v*10 + int64(ch-'0')
	}
	if neg {
		v = -v
	}
	return v, true
}

// replyError is an error reply from Redis. It satisfies redis.Error, so the
// node tells it from a broken connection as it does for go-redis's.
type replyError string

func replyErrorOf(b []byte) replyError { return replyError(b) }

func (e replyError) Error() string { return string(e) }

// RedisError marks e as Redis's own answer.
func (replyError) RedisError() {}
