package statuspage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/operator-dev/operator/actuators"
	"github.com/operator-dev/operator/internal/bus"
	"github.com/operator-dev/operator/schemas"
)

// A Page reads the bus for the status page: the whole status, the updates
// after a cursor, one episode. It is safe for concurrent use; its Handler
// serves it over HTTP.
type Page struct {
	cfg     Config
	bus     *bus.Bus
	control *bus.KV
	rules   rules
	views   map[string]*Views
	log     *slog.Logger
}

// New checks cfg, compiles the subjects' views and opens the control
// bucket on b, which must stay open while the page is used.
func New(ctx context.Context, cfg Config, b *bus.Bus) (*Page, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("status page config: %w", err)
	}
	cfg = cfg.withDefaults()
	p := &Page{cfg: cfg, bus: b, rules: newRules(cfg.RuleSets), views: map[string]*Views{}, log: cfg.Logger}
	var errs []error
	for _, s := range cfg.Subjects {
		v, err := CompileViews(s.Name, s.Views)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.views[s.Name] = v
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	kv, err := b.KV(ctx, schemas.BucketControl)
	if err != nil {
		return nil, err
	}
	p.control = kv
	return p, nil
}

// A source is one stream or bucket the page reads.
type source struct {
	stream string // empty for a bucket
	bucket string
	filter string
	// latest reads only the newest message per subject on a catch-up.
	latest bool
	// history streams are read from a time for the status, and their
	// messages are never removed but by retention.
	history bool
}

func (p *Page) sources() [numPositions]source {
	subj := p.bus.Subjects()
	obs, _ := subj.Observations("")
	return [numPositions]source{
		posViolations:   {stream: schemas.StreamViolations, history: true},
		posActions:      {stream: schemas.StreamActions, history: true},
		posDiagnoses:    {stream: schemas.StreamDiagnoses, history: true},
		posObservations: {stream: schemas.StreamObservations, filter: obs, latest: true},
		posAlerts:       {bucket: schemas.BucketEvaluatorState},
		posControl:      {bucket: schemas.BucketControl},
	}
}

// positions returns where every stream begins and ends now.
func (p *Page) positions(ctx context.Context) (first, last Cursor, err error) {
	for i, s := range p.sources() {
		if s.bucket != "" {
			first[i], last[i], err = p.bus.BucketPosition(ctx, s.bucket)
		} else {
			first[i], last[i], err = p.bus.StreamPosition(ctx, s.stream)
		}
		if err != nil {
			return first, last, err
		}
	}
	return first, last, nil
}

// ErrCursorExpired is returned for a cursor the streams cannot resume
// from: past a stream's end (the store was replaced) or before what a
// stream still holds (retention removed it). Read the status again.
var ErrCursorExpired = errors.New("cursor expired")

// checkCursor says whether c can be resumed with the streams between
// first and last.
func (p *Page) checkCursor(c, first, last Cursor) error {
	srcs := p.sources()
	for i := range c {
		name := srcs[i].stream + srcs[i].bucket
		if c[i] > last[i] {
			return fmt.Errorf("%w: %s ends at %d, the cursor is at %d (a new store?)", ErrCursorExpired, name, last[i], c[i])
		}
		if srcs[i].history && c[i]+1 < first[i] {
			return fmt.Errorf("%w: %s now begins at %d, after the cursor's %d", ErrCursorExpired, name, first[i], c[i])
		}
	}
	return nil
}

// read reads source i after the sequence after (or from since, when after
// is 0 and since is set) through the sequence through, or on as messages
// are stored when through is 0 (so a caller that means "through the end of
// an empty stream" must not call it), and calls fn with each message's change to
// the page (often none). now is the wall time staleness is judged at;
// zero judges each observation when it is read.
func (p *Page) read(ctx context.Context, i int, after, through uint64, since time.Time, withData bool, now time.Time,
	fn func(seq uint64, c change) error) error {
	src := p.sources()[i]
	if src.bucket != "" {
		return p.bus.ReadBucket(ctx, bus.BucketRead{Bucket: src.bucket, After: after, Through: through}, func(kc bus.KVChange) error {
			var c change
			switch i {
			case posAlerts:
				c.alert = p.rules.alertOf(kc.Key, kc.Value, kc.Deleted)
			case posControl:
				ctl, err := p.readControl(ctx, time.Now())
				if err != nil {
					return err
				}
				c.control = ctl
			}
			return fn(kc.Revision, c)
		})
	}
	r := bus.StreamRead{Stream: src.stream, Filter: src.filter, After: after, Through: through, LastPerSubject: src.latest}
	if after == 0 {
		r.Since = since
	}
	return p.bus.ReadStream(ctx, r, func(se bus.StoredEvent) error {
		var c change
		if se.Err == nil {
			if i == posObservations {
				at := now
				if at.IsZero() {
					at = time.Now() // a follow judges staleness as it goes
				}
				c.instance = p.instanceOf(se.Event.Data(), at)
			} else {
				c.episode = episodeOf(letters[i], se.Sequence, se.Event, withData)
			}
		}
		return fn(se.Sequence, c)
	})
}

// readControl reads the actuators' controls at now.
func (p *Page) readControl(ctx context.Context, now time.Time) (*Control, error) {
	st, err := actuators.ReadStatus(ctx, p.control, now)
	if err != nil {
		return nil, fmt.Errorf("read controls: %w", err)
	}
	return controlOf(st, now), nil
}

// Status reads the whole status at now (wall time): the alerts, controls
// and instances as they stand, and the episodes of the last History.
func (p *Page) Status(ctx context.Context, now time.Time) (Status, error) {
	_, last, err := p.positions(ctx)
	if err != nil {
		return Status{}, err
	}
	var changes [numPositions][]change
	g, gctx := errgroup.WithContext(ctx)
	for i := range numPositions {
		if i == posControl || last[i] == 0 {
			continue // the controls are read once below; an empty stream has nothing
		}
		g.Go(func() error {
			return p.read(gctx, i, 0, last[i], now.Add(-p.cfg.History), false, now, func(_ uint64, c change) error {
				changes[i] = append(changes[i], c)
				return nil
			})
		})
	}
	if err := g.Wait(); err != nil {
		return Status{}, err
	}
	ctl, err := p.readControl(ctx, now)
	if err != nil {
		return Status{}, err
	}
	m := newModel()
	for _, cs := range changes {
		for _, c := range cs {
			m.apply(c)
		}
	}
	m.apply(change{control: ctl})
	st := m.status(p.cfg.MaxEpisodes)
	st.Cursor, st.GeneratedAt = last.String(), now.UTC()
	st.HistoryMS, st.MaxEpisodes = p.cfg.History.Milliseconds(), p.cfg.MaxEpisodes
	st.TokenRequired = p.cfg.Token != ""
	return st, nil
}

// Updates are the changes after a cursor (GET /api/v1/updates).
type Updates struct {
	// Cursor is where the next poll goes on from.
	Cursor  string   `json:"cursor"`
	Updates []Update `json:"updates"`
	// More says a stream had more than one poll reads: poll again at once.
	More bool `json:"more"`
}

// errLimit ends a read at the poll limit.
var errLimit = errors.New("poll limit reached")

// Updates reads the changes after from, up to what is stored now and at
// most PollLimit messages per stream. now is the wall time of the poll.
func (p *Page) Updates(ctx context.Context, from Cursor, now time.Time) (Updates, error) {
	first, last, err := p.positions(ctx)
	if err != nil {
		return Updates{}, err
	}
	if err := p.checkCursor(from, first, last); err != nil {
		return Updates{}, err
	}
	out := Updates{Updates: []Update{}}
	cur := from
	for i := range numPositions {
		if last[i] <= from[i] {
			continue // nothing new (and a through of 0 would follow)
		}
		n := 0
		err := p.read(ctx, i, from[i], last[i], time.Time{}, false, now, func(seq uint64, c change) error {
			if n == p.cfg.PollLimit {
				return errLimit
			}
			n++
			cur[i] = seq
			if k := c.kind(); k != "" {
				out.Updates = append(out.Updates, Update{Event: k, ID: cur.String(), Stream: letters[i : i+1], Sequence: seq, Data: c.data()})
			}
			return nil
		})
		switch {
		case errors.Is(err, errLimit):
			out.More = true
		case err != nil:
			return Updates{}, err
		default:
			// Everything through last[i] was read, though messages a
			// later one replaced were not delivered.
			cur[i] = max(cur[i], last[i])
		}
	}
	out.Cursor = cur.String()
	return out, nil
}

// ErrNoEpisode: no event of the episode is stored.
var ErrNoEpisode = errors.New("no such episode")

// Episode reads everything stored about one episode, evidence data
// included.
func (p *Page) Episode(ctx context.Context, id string) (*Episode, error) {
	_, last, err := p.positions(ctx)
	if err != nil {
		return nil, err
	}
	ep := &Episode{ID: id, Steps: []Step{}}
	found := false
	now := time.Now()
	for _, i := range []int{posViolations, posActions, posDiagnoses} {
		if last[i] == 0 {
			continue
		}
		err := p.read(ctx, i, 0, last[i], time.Time{}, true, now, func(_ uint64, c change) error {
			if c.episode != nil && c.episode.ID == id {
				ep.merge(c.episode)
				found = true
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if !found {
		return nil, fmt.Errorf("%w: %s", ErrNoEpisode, id)
	}
	return ep, nil
}

// An item is one message read by a follow: its stream, sequence and
// change.
type item struct {
	pos int
	seq uint64
	c   change
}

// follow reads every stream after from as messages are stored and sends
// each to out, until ctx is done; it returns after its readers have
// stopped.
func (p *Page) follow(ctx context.Context, from Cursor, out chan<- item) error {
	g, gctx := errgroup.WithContext(ctx)
	for i := range numPositions {
		g.Go(func() error {
			return p.read(gctx, i, from[i], 0, time.Time{}, false, time.Time{}, func(seq uint64, c change) error {
				select {
				case out <- item{pos: i, seq: seq, c: c}:
					return nil
				case <-gctx.Done():
					return gctx.Err()
				}
			})
		})
	}
	err := g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}
