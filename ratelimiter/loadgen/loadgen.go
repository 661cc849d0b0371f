// Package loadgen drives open-loop traffic at rate limiter nodes in the
// shapes Operator's scenarios need: steady traffic over many keys, one hot
// key, and bursts at fixed-window boundaries. It reports allowed, denied and
// failed checks per second. It talks to nodes only through
// ratelimiter/client.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/operator-dev/operator/ratelimiter/client"
)

// Pattern is a traffic shape.
type Pattern string

// Patterns.
const (
	// Steady spreads RPS evenly over Keys keys.
	Steady Pattern = "steady"
	// HotKey sends half of RPS to HotKey and the rest over Keys keys.
	HotKey Pattern = "hotkey"
	// Boundary sends, around every end of BurstKey's window, a burst of
	// Burst checks just before it and another just after: a fixed window
	// admits both. It sends nothing else (RPS and Keys are not used).
	Boundary Pattern = "boundary"
)

// Defaults for Config.
const (
	DefaultRPS        = 200
	DefaultKeys       = 20
	DefaultWorkers    = 32
	DefaultKeyPrefix  = "user:"
	DefaultHotKey     = "hot:1"
	DefaultBurstKey   = "burst:1"
	DefaultWindow     = 10 * time.Second
	DefaultBurst      = 50
	DefaultReqTimeout = 2 * time.Second
)

// Config configures a run.
type Config struct {
	Targets  []string      `yaml:"targets"`
	RPS      int           `yaml:"rps"`
	Keys     int           `yaml:"keys"`
	Pattern  Pattern       `yaml:"pattern"`
	Duration time.Duration `yaml:"duration"` // 0: until ctx is done
	// KeyPrefix names the steady keys: <prefix>0 .. <prefix>(Keys-1).
	KeyPrefix string        `yaml:"key_prefix"`
	HotKey    string        `yaml:"hot_key"`
	BurstKey  string        `yaml:"burst_key"`
	Window    time.Duration `yaml:"window"`
	Burst     int           `yaml:"burst"`
	Workers   int           `yaml:"workers"`
	Token     string        `yaml:"token"`
	// HTTPClient is shared by the workers (default: keep-alive pool).
	HTTPClient *http.Client `yaml:"-"`
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if len(c.Targets) == 0 {
		errs = append(errs, errors.New("at least one target URL is needed"))
	}
	switch c.Pattern {
	case "", Steady, HotKey, Boundary:
	default:
		errs = append(errs, fmt.Errorf("unknown pattern %q (steady, hotkey, boundary)", c.Pattern))
	}
	if c.RPS < 0 || c.Keys < 0 || c.Burst < 0 || c.Workers < 0 || c.Duration < 0 || c.Window < 0 {
		errs = append(errs, errors.New("rps, keys, burst, workers, window and duration must not be negative"))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.RPS == 0 {
		c.RPS = DefaultRPS
	}
	if c.Keys == 0 {
		c.Keys = DefaultKeys
	}
	if c.Pattern == "" {
		c.Pattern = Steady
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = DefaultKeyPrefix
	}
	if c.HotKey == "" {
		c.HotKey = DefaultHotKey
	}
	if c.BurstKey == "" {
		c.BurstKey = DefaultBurstKey
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.Burst == 0 {
		c.Burst = DefaultBurst
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: DefaultReqTimeout, Transport: &http.Transport{
			MaxIdleConns: 256, MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}}
	}
	return c
}

// Second is one second of results.
type Second struct {
	At      time.Time
	Allowed int64
	Denied  int64
	Errors  int64
	// Skipped counts checks not sent because every worker was busy: the
	// targets could not keep up with the requested rate.
	Skipped int64
}

// Totals sums a run.
type Totals struct {
	Seconds                          int
	Allowed, Denied, Errors, Skipped int64
}

type counters struct{ allowed, denied, errors, skipped atomic.Int64 }

func (c *counters) take(at time.Time) Second {
	return Second{At: at, Allowed: c.allowed.Swap(0), Denied: c.denied.Swap(0), Errors: c.errors.Swap(0), Skipped: c.skipped.Swap(0)}
}

// Run sends traffic until ctx is done or Duration passes, calling report
// once a second (from one goroutine). It returns the totals.
func Run(ctx context.Context, cfg Config, report func(Second)) (Totals, error) {
	if err := cfg.Validate(); err != nil {
		return Totals{}, err
	}
	cfg = cfg.withDefaults()
	clients := make([]*client.Client, 0, len(cfg.Targets))
	for _, t := range cfg.Targets {
		c, err := client.New(t, cfg.HTTPClient)
		if err != nil {
			return Totals{}, err
		}
		clients = append(clients, c.WithToken(cfg.Token))
	}
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}

	var cnt counters
	jobs := make(chan string, cfg.Workers)
	var wg sync.WaitGroup
	var next atomic.Uint64
	for range cfg.Workers {
		wg.Go(func() {
			for key := range jobs {
				c := clients[next.Add(1)%uint64(len(clients))]
				d, err := c.Check(context.WithoutCancel(ctx), key, 1)
				switch {
				case err != nil:
					cnt.errors.Add(1)
				case d.Allowed:
					cnt.allowed.Add(1)
				default:
					cnt.denied.Add(1)
				}
			}
		})
	}
	send := func(key string) {
		select {
		case jobs <- key:
		default:
			cnt.skipped.Add(1)
		}
	}
	// sendAll queues a burst, waiting for workers rather than skipping.
	sendAll := func(key string, n int) {
		for range n {
			select {
			case jobs <- key:
			case <-ctx.Done():
				return
			}
		}
	}

	var tot Totals
	const tick = 10 * time.Millisecond
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	second := time.NewTicker(time.Second)
	defer second.Stop()
	perTick := float64(cfg.RPS) * tick.Seconds()
	var owed float64
	var i int
	var burstWG sync.WaitGroup
	if cfg.Pattern == Boundary {
		burstWG.Go(func() { straddle(ctx, clients[0], cfg, sendAll) })
	}
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case now := <-second.C:
			s := cnt.take(now)
			tot.Seconds++
			tot.Allowed += s.Allowed
			tot.Denied += s.Denied
			tot.Errors += s.Errors
			tot.Skipped += s.Skipped
			if report != nil {
				report(s)
			}
		case <-ticker.C:
			if cfg.Pattern == Boundary {
				continue
			}
			owed += perTick
			for ; owed >= 1; owed-- {
				i++
				switch {
				case cfg.Pattern == HotKey && i%2 == 0:
					send(cfg.HotKey)
				default:
					send(fmt.Sprintf("%s%d", cfg.KeyPrefix, rand.IntN(cfg.Keys)))
				}
			}
		}
	}
	burstWG.Wait()
	close(jobs)
	wg.Wait()
	// The last partial second counts in the totals, not in the reports.
	last := cnt.take(time.Now())
	tot.Allowed += last.Allowed
	tot.Denied += last.Denied
	tot.Errors += last.Errors
	tot.Skipped += last.Skipped
	return tot, nil
}

// straddle sends a burst just before each end of BurstKey's window and
// another just after it. A fixed window starts at its first use, so the end
// is learnt from a probe check's reset_after_ms rather than guessed.
func straddle(ctx context.Context, c *client.Client, cfg Config, sendAll func(string, int)) {
	wait := func(until time.Time) bool {
		t := time.NewTimer(time.Until(until))
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	for ctx.Err() == nil {
		d, err := c.Check(ctx, cfg.BurstKey, 1)
		if err != nil {
			if !wait(time.Now().Add(time.Second)) {
				return
			}
			continue
		}
		end := time.Now().Add(time.Duration(d.ResetAfterMS) * time.Millisecond)
		if d.ResetAfterMS <= 0 {
			end = time.Now().Add(cfg.Window)
		}
		if !wait(end.Add(-300 * time.Millisecond)) {
			return
		}
		sendAll(cfg.BurstKey, cfg.Burst)
		if !wait(end.Add(100 * time.Millisecond)) {
			return
		}
		sendAll(cfg.BurstKey, cfg.Burst)
		// The next window started with that burst; probe again near its end.
		if !wait(time.Now().Add(cfg.Window / 2)) {
			return
		}
	}
}
