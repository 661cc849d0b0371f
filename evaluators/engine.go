package evaluators

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/operator-dev/operator/internal/expr"
	"github.com/operator-dev/operator/schemas"
)

// ErrInvalidObservation is wrapped by Observe for an event that can never be
// evaluated (wrong type, undecodable data, no time, unsafe names). Retrying
// it cannot help: it is a schemas.ErrPermanent, so the bus terminates such
// messages.
var ErrInvalidObservation error = schemas.PermanentKind("invalid observation")

// ErrNoRules is wrapped by Observe for an observation of a subject no
// loaded rule set names. Consumers filter on the rule sets' subjects, so it
// means a misrouted message; it is a schemas.ErrPermanent too.
var ErrNoRules error = schemas.PermanentKind("no rule set for subject")

// Engine evaluates observations against rule sets, keeps alert state in a
// schemas.Store with compare-and-swap and publishes violations and action
// requests through a Publisher. Its methods are safe for concurrent use:
// several goroutines, processes or hosts may run engines on the same store
// and stream.
//
// # Publication order
//
// Each alert transition is written together with its events (an outbox in
// the alert record) in one compare-and-swap; the events are published only
// after that write succeeds, then the outbox is cleared. A worker that loses
// the compare-and-swap publishes nothing and re-applies the observation on
// the newer record, so an event never announces a transition the store does
// not hold. A crash after the write and before the publish loses nothing:
// the next reader of the record (the redelivered observation, the next
// observation of the instance, or the staleness check) publishes the outbox
// first. Ids are deterministic (violation: DeriveID(fingerprint, episode,
// status); action request: DeriveID(episode, action)), so a republish within
// the stream's duplicate window is dropped by JetStream. The only way to get
// a duplicate is a crash between the publish and the clearing of the outbox
// with the record not read again within the duplicate window; the duplicate
// then carries the same id, which downstream consumers deduplicate on.
type Engine struct {
	cfg      Config
	log      *slog.Logger
	store    schemas.Store
	pub      schemas.Publisher
	subjects schemas.Subjects
	source   string
	rules    map[string]*subjectRules
	m        *metrics

	mu   sync.Mutex
	seen map[string]instanceRef
}

// subjectRules are the rules of one subject, from one or more files.
type subjectRules struct {
	subject    string
	rules      []*Rule
	staleAfter time.Duration
}

type instanceRef struct{ subject, instance string }

// NewEngine builds an engine over checked rule sets (from LoadRuleSets or
// ParseRuleSet).
func NewEngine(cfg Config, sets []*RuleSet, store schemas.Store, pub schemas.Publisher) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("evaluator config: %w", err)
	}
	if store == nil || pub == nil {
		return nil, errors.New("evaluator needs a state store and a publisher")
	}
	cfg = cfg.withDefaults()
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	e := &Engine{
		cfg:      cfg,
		log:      cfg.Logger,
		store:    store,
		pub:      pub,
		subjects: schemas.Subjects{Prefix: cfg.SubjectPrefix},
		source:   "/evaluators/" + cfg.WorkerID,
		rules:    map[string]*subjectRules{},
		m:        m,
		seen:     map[string]instanceRef{},
	}
	for _, rs := range sets {
		sr := e.rules[rs.Subject]
		if sr == nil {
			sr = &subjectRules{subject: rs.Subject}
			e.rules[rs.Subject] = sr
		}
		for _, r := range rs.Rules {
			if r.c == nil || r.c.expr == nil || (r.Each != "" && (r.c.each == nil || r.c.key == nil)) {
				return nil, fmt.Errorf("rule %q of %s is not compiled: load rule sets with LoadRuleSets or ParseRuleSet", r.Name, rs.File)
			}
			sr.rules = append(sr.rules, r)
		}
		if rs.StaleAfter > 0 {
			sr.staleAfter = rs.StaleAfter
		}
	}
	if errs := checkAcrossFiles(sets); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return e, nil
}

// Subjects returns the subjects the engine has rules for, sorted.
func (e *Engine) Subjects() []string { return slices.Sorted(maps.Keys(e.rules)) }

// staleAfter is the staleness threshold of an instance of sr whose observer
// polls every intervalMS.
func (e *Engine) staleAfter(sr *subjectRules, intervalMS int64) time.Duration {
	switch {
	case sr.staleAfter > 0:
		return sr.staleAfter
	case e.cfg.StaleAfter > 0:
		return e.cfg.StaleAfter
	case intervalMS > 0:
		return DefaultStaleIntervals * time.Duration(intervalMS) * time.Millisecond
	}
	return DefaultStaleAfter
}

// observation is a decoded observation event.
type observation struct {
	id         string
	at         time.Time
	subject    string
	instance   string
	intervalMS int64
	val        ref.Val
}

func decodeObservation(ev event.Event) (observation, error) {
	if ev.Type() != schemas.TypeObservation {
		return observation{}, fmt.Errorf("%w: event %s has type %q", ErrInvalidObservation, ev.ID(), ev.Type())
	}
	if ev.Time().IsZero() {
		return observation{}, fmt.Errorf("%w: event %s has no time", ErrInvalidObservation, ev.ID())
	}
	val, err := expr.ParseJSON(ev.Data())
	if err != nil {
		return observation{}, fmt.Errorf("%w: event %s data: %v", ErrInvalidObservation, ev.ID(), err)
	}
	data, ok := val.(traits.Mapper)
	if !ok {
		return observation{}, fmt.Errorf("%w: event %s data is not a JSON object", ErrInvalidObservation, ev.ID())
	}
	o := observation{id: ev.ID(), at: ev.Time().UTC(), val: val}
	if v, ok := data.Find(types.String("subject")); ok {
		s, _ := v.(types.String)
		o.subject = string(s)
	}
	if v, ok := data.Find(types.String("instance")); ok {
		s, _ := v.(types.String)
		o.instance = string(s)
	}
	for _, tok := range []string{o.subject, o.instance} {
		if err := schemas.ValidToken(tok); err != nil {
			return observation{}, fmt.Errorf("%w: event %s: subject/instance: %v", ErrInvalidObservation, ev.ID(), err)
		}
	}
	if v, ok := data.Find(types.String("observer")); ok {
		if obsr, ok := v.(traits.Mapper); ok {
			if ms, ok := obsr.Find(types.String("interval_ms")); ok {
				if f, ok := ms.(types.Double); ok && f > 0 {
					o.intervalMS = int64(f)
				}
			}
		}
	}
	return o, nil
}

// ruleEval is the outcome of one rule on one observation.
type ruleEval struct {
	rule *Rule
	// errs are the runtime errors; with any of them the rule is not
	// complete and keys it did not judge keep their state.
	errs []error
	// results in item order, one per key.
	results []keyResult
}

type keyResult struct {
	key    string
	active bool
	item   ref.Val // nil for rules without each
}

func (re *ruleEval) complete() bool { return len(re.errs) == 0 }

// evaluate runs every rule of sr on obs. It is pure: no I/O.
func evaluate(sr *subjectRules, obs ref.Val) []ruleEval {
	out := make([]ruleEval, len(sr.rules))
	var act expr.Activation
	act.Bind(varObs, obs)
	item := act.Slot(varItem)
	// Rules with the same each and key share the items and their keys.
	var collections map[string]*collection

	for i, r := range sr.rules {
		re := &out[i]
		re.rule = r
		c := r.c
		if c.each == nil {
			item.Set(nil)
			key := ""
			if c.key != nil {
				kv, err := c.key.Eval(&act)
				if err == nil {
					key, err = keyString(kv)
				}
				if err != nil {
					re.errs = append(re.errs, fmt.Errorf("key: %w", err))
					continue
				}
			}
			ok, err := c.expr.EvalBool(&act)
			if err != nil {
				re.errs = append(re.errs, fmt.Errorf("expr: %w", err))
				continue
			}
			re.results = []keyResult{{key: key, active: ok}}
			continue
		}
		coll := collections[c.each.Source()+"\x00"+c.key.Source()]
		if coll == nil {
			coll = collect(c, &act, item)
			if collections == nil {
				collections = map[string]*collection{}
			}
			collections[c.each.Source()+"\x00"+c.key.Source()] = coll
		}
		if coll.err != nil {
			re.errs = append(re.errs, coll.err)
			continue
		}
		re.results = make([]keyResult, 0, len(coll.items))
		for j, it := range coll.items {
			if err := coll.keyErrs[j]; err != nil {
				re.errs = append(re.errs, err)
				continue
			}
			item.Set(it)
			key := coll.keys[j]
			active, err := c.expr.EvalBool(&act)
			if err != nil {
				re.errs = append(re.errs, fmt.Errorf("key %q: expr: %w", key, err))
				continue
			}
			re.results = append(re.results, keyResult{key: key, active: active, item: it})
		}
	}
	return out
}

// collection is the items of an each expression with their keys.
type collection struct {
	err     error // each failed: no items
	items   []ref.Val
	keys    []string
	keyErrs []error // per item: its key failed or is not unique
}

// collect evaluates each and key with act, binding each element to item.
func collect(c *compiledRule, act *expr.Activation, item expr.Slot) *collection {
	item.Set(nil)
	lv, err := c.each.Eval(act)
	if err != nil {
		return &collection{err: fmt.Errorf("each: %w", err)}
	}
	list, ok := lv.(traits.Lister)
	if !ok {
		return &collection{err: fmt.Errorf("each: got %s, want a list", lv.Type())}
	}
	n, _ := list.Size().(types.Int)
	coll := &collection{
		items:   make([]ref.Val, int(n)),
		keys:    make([]string, int(n)),
		keyErrs: make([]error, int(n)),
	}
	seen := make(map[string]struct{}, int(n))
	for j := range coll.items {
		it := list.Get(types.Int(j))
		coll.items[j] = it
		item.Set(it)
		kv, err := c.key.Eval(act)
		var key string
		if err == nil {
			key, err = keyString(kv)
		}
		switch {
		case err != nil:
			coll.keyErrs[j] = fmt.Errorf("item %d: key: %w", j, err)
		default:
			if _, dup := seen[key]; dup {
				coll.keyErrs[j] = fmt.Errorf("item %d: key %q is not unique", j, key)
			}
			seen[key] = struct{}{}
			coll.keys[j] = key
		}
	}
	return coll
}

// Observe evaluates one observation event received at receivedAt (wall
// time in `operator evaluate`, the event time in replay and tests), updates
// alert state and publishes what changed. Transitions use the event's time.
// It returns nil for an observation older than the instance's newest one
// (ignored) and for a redelivered one (applied at most once). Errors
// wrapping ErrInvalidObservation or ErrNoRules are permanent; others
// (store, publish) are transient: retry the observation. The
// evaluation-duration metric times the call on the wall clock; nothing else
// here reads it.
func (e *Engine) Observe(ctx context.Context, ev event.Event, receivedAt time.Time) error {
	o, err := decodeObservation(ev)
	if err != nil {
		return err
	}
	sr := e.rules[o.subject]
	if sr == nil {
		return fmt.Errorf("%w %q (event %s)", ErrNoRules, o.subject, o.id)
	}
	timer := prometheus.NewTimer(e.m.duration.WithLabelValues(o.subject))
	defer timer.ObserveDuration()

	evals := evaluate(sr, o.val)
	for _, re := range evals {
		if !re.complete() {
			e.m.ruleErrors.WithLabelValues(o.subject, re.rule.Name).Inc()
		}
	}
	inst, gapAt, ok, err := e.admit(ctx, sr, o, evals, receivedAt.UTC())
	if err != nil {
		return err
	}
	if !ok {
		e.m.observations.WithLabelValues(o.subject, resultOutOfOrder).Inc()
		e.log.Debug("observation older than the newest applied: ignored", "subject", o.subject, "instance", o.instance, "event_id", o.id)
		return nil
	}
	e.remember(o.subject, o.instance)
	p := &pass{e: e, sr: sr, subject: o.subject, instance: o.instance, inst: inst}

	// 1. The gap before this observation, if the instance went stale in it:
	// observer_stale fires at the moment it went stale, and rules with
	// on_missing: resolve resolve then. The staleness ticker derives the
	// same events with the same ids.
	if !gapAt.IsZero() {
		if err := p.stale(ctx, gapAt, inst.PrevObservationID); err != nil {
			return err
		}
	}
	// 2. Observations resumed: observer_stale resolves.
	if _, ok := inst.tracked(RuleObserverStale, ""); ok {
		if err := p.visit(ctx, builtinStale(), "", ResultFalse, o.at, o.id, nil); err != nil {
			return err
		}
	}
	// 3. The rules, in file order; keys in item order, then keys that were
	// active and are gone from a rule that evaluated completely.
	lateErrs := map[string][]error{}
	for i := range evals {
		re := &evals[i]
		visited := map[string]bool{}
		for _, kr := range re.results {
			if _, tracked := inst.tracked(re.rule.Name, kr.key); !kr.active && !tracked {
				continue // inactive and not tracked: nothing to change
			}
			visited[kr.key] = true
			res := ResultFalse
			if kr.active {
				res = ResultTrue
			}
			fire := p.ruleFire(re.rule, o, kr, lateErrs)
			if err := p.visit(ctx, re.rule, kr.key, res, o.at, o.id, fire); err != nil {
				return err
			}
		}
		if !re.complete() {
			continue // a failure is not an empty result
		}
		for _, key := range slices.Sorted(maps.Keys(inst.Active[re.rule.Name])) {
			if visited[key] {
				continue
			}
			if err := p.visit(ctx, re.rule, key, ResultFalse, o.at, o.id, nil); err != nil {
				return err
			}
		}
	}
	// 4. rule_error: fires for each rule that failed, resolves once it
	// evaluates cleanly again. Errors found while rendering a firing
	// violation count too.
	var late []string
	for _, re := range evals {
		if len(lateErrs[re.rule.Name]) > 0 {
			late = append(late, re.rule.Name)
		}
	}
	if len(late) > 0 {
		if err := p.trackLate(ctx, late, o.at); err != nil {
			return err
		}
	}
	for _, re := range evals {
		errs := append(slices.Clip(re.errs), lateErrs[re.rule.Name]...)
		if len(lateErrs[re.rule.Name]) > 0 && re.complete() {
			e.m.ruleErrors.WithLabelValues(o.subject, re.rule.Name).Inc()
		}
		name := re.rule.Name
		switch {
		case len(errs) > 0:
			if err := p.visit(ctx, builtinRuleError(), name, ResultTrue, o.at, o.id, ruleErrorFire(o, name, errs)); err != nil {
				return err
			}
		default:
			if _, ok := p.inst.tracked(RuleError, name); ok {
				if err := p.visit(ctx, builtinRuleError(), name, ResultFalse, o.at, o.id, nil); err != nil {
					return err
				}
			}
		}
	}
	// 5. Forget keys whose alert is over.
	if err := p.untrackDone(ctx); err != nil {
		return err
	}
	e.m.observations.WithLabelValues(o.subject, resultEvaluated).Inc()
	return nil
}

// remember notes an instance for the staleness check.
func (e *Engine) remember(subject, instance string) {
	k := instanceKey(subject, instance)
	e.mu.Lock()
	e.seen[k] = instanceRef{subject, instance}
	e.mu.Unlock()
}

// admit advances the instance record to observation o, or reports that o is
// older than the newest observation admitted (ok false). The keys o finds
// active are added to the record before any alert is written (see
// instanceRecord.Active). gapAt is when the instance went stale before o,
// zero if it did not.
func (e *Engine) admit(ctx context.Context, sr *subjectRules, o observation, evals []ruleEval, receivedAt time.Time) (inst instanceRecord, gapAt time.Time, ok bool, err error) {
	key := instanceKey(o.subject, o.instance)
	err = e.update(ctx, o.subject, key, func(cur instanceRecord, exists bool) (instanceRecord, bool, error) {
		ok = false
		gapAt = time.Time{}
		next := cur.clone()
		if !exists {
			next = instanceRecord{Subject: o.subject, Instance: o.instance}
		}
		changed := !exists
		switch {
		case !exists || cur.LastObservationAt.Before(o.at):
			if exists {
				sa := e.staleAfter(sr, cur.IntervalMS)
				if o.at.Sub(cur.LastObservationAt) > sa {
					gapAt = cur.LastObservationAt.Add(sa).UTC()
				}
			}
			next.PrevObservationID = cur.LastObservationID
			next.LastObservationAt = o.at
			next.LastObservationID = o.id
			next.GapAt = gapAt
			changed = true
		case cur.LastObservationAt.Equal(o.at) && cur.LastObservationID == o.id:
			// A redelivery: apply it again (every step is idempotent),
			// including the gap it found the first time.
			gapAt = cur.GapAt
		default:
			inst = cur
			return cur, false, nil
		}
		ok = true
		if receivedAt.After(next.LastReceivedAt) {
			next.LastReceivedAt = receivedAt
			changed = true
		}
		if o.intervalMS > 0 && o.intervalMS != next.IntervalMS {
			next.IntervalMS = o.intervalMS
			changed = true
		}
		for _, re := range evals {
			for _, kr := range re.results {
				if kr.active && next.track(re.rule.Name, kr.key, o.at) {
					changed = true
				}
			}
			if !re.complete() && next.track(RuleError, re.rule.Name, o.at) {
				changed = true
			}
		}
		if !gapAt.IsZero() && next.track(RuleObserverStale, "", gapAt) {
			changed = true
		}
		inst = next
		return next, changed, nil
	})
	return inst, gapAt, ok, err
}

// update applies fn to the instance record under key with compare-and-swap,
// retrying on conflict. fn gets the current record and whether it exists,
// and returns the new one and whether to write it.
func (e *Engine) update(ctx context.Context, subject, key string, fn func(cur instanceRecord, exists bool) (instanceRecord, bool, error)) error {
	for attempt := 0; attempt <= e.cfg.MaxConflictRetries; attempt++ {
		raw, rev, err := e.store.Get(ctx, key)
		exists := true
		var cur instanceRecord
		switch {
		case errors.Is(err, schemas.ErrKeyNotFound):
			exists, rev = false, 0
		case err != nil:
			return fmt.Errorf("read instance record %s: %w", key, err)
		default:
			if err := json.Unmarshal(raw, &cur); err != nil {
				return fmt.Errorf("decode instance record %s: %w", key, err)
			}
		}
		next, write, err := fn(cur, exists)
		if err != nil || !write {
			return err
		}
		b, err := json.Marshal(next)
		if err != nil {
			return fmt.Errorf("encode instance record %s: %w", key, err)
		}
		_, err = e.store.CompareAndSwap(ctx, key, b, rev)
		if errors.Is(err, schemas.ErrRevisionConflict) {
			e.m.conflicts.WithLabelValues(subject).Inc()
			continue
		}
		if err != nil {
			return fmt.Errorf("write instance record %s: %w", key, err)
		}
		return nil
	}
	return fmt.Errorf("write instance record %s: %d conflicts in a row: %w", key, e.cfg.MaxConflictRetries+1, schemas.ErrRevisionConflict)
}

// pass is the application of one observation (or one staleness check) to
// the alerts of one instance.
type pass struct {
	e                 *Engine
	sr                *subjectRules
	subject, instance string
	inst              instanceRecord
	// done are alerts found inactive or resolved, candidates to untrack.
	done []doneAlert
}

type doneAlert struct {
	rule, key  string
	lastEvalAt time.Time
}

// builtinStale and builtinRuleError are the built-in rules' definitions.
func builtinStale() *Rule {
	return &Rule{Name: RuleObserverStale, Severity: schemas.SeverityWarning}
}

func builtinRuleError() *Rule {
	return &Rule{Name: RuleError, Severity: schemas.SeverityWarning}
}

// firing is what a firing violation says beyond the alert's state.
type firing struct {
	severity, summary, description string
	labels                         map[string]string
	evidence                       json.RawMessage
	errText                        string
	action                         string
	params                         map[string]any
}

// fireFunc renders a firing violation; it is called only when the alert
// actually starts firing.
type fireFunc func() firing

// ruleFire renders the firing violation of a rule for one key: templates,
// evidence and remediation params, evaluated on the observation. Errors are
// collected into late (they make rule_error fire) and rendered inline.
func (p *pass) ruleFire(r *Rule, o observation, kr keyResult, late map[string][]error) fireFunc {
	return func() firing {
		act := &expr.Activation{}
		act.Bind(varObs, o.val)
		act.Bind(varItem, kr.item)
		c := r.c
		f := firing{severity: r.Severity}
		fail := func(err error) { late[r.Name] = append(late[r.Name], fmt.Errorf("key %q: %w", kr.key, err)) }
		var err error
		if f.summary, err = c.summary.render(act); err != nil {
			fail(fmt.Errorf("summary: %w", err))
		}
		if f.summary == "" {
			f.summary = defaultSummary(r.Name, kr.key)
		}
		if f.description, err = c.description.render(act); err != nil {
			fail(fmt.Errorf("description: %w", err))
		}
		if len(c.labelNames) > 0 {
			f.labels = make(map[string]string, len(c.labelNames))
			for _, name := range c.labelNames {
				if f.labels[name], err = c.labels[name].render(act); err != nil {
					fail(fmt.Errorf("labels.%s: %w", name, err))
				}
			}
		}
		f.evidence = evidenceOf(act, c, kr)
		if r.Remediate != nil {
			f.action = r.Remediate.Action
			f.params = make(map[string]any, len(c.paramNames))
			for _, name := range c.paramNames {
				v, err := c.params[name].Eval(act)
				var n any
				if err == nil {
					n, err = expr.JSONValue(v)
				}
				if err != nil {
					fail(fmt.Errorf("remediate.params.%s: %w", name, err))
					f.action = "" // an action with a broken parameter is not requested
					continue
				}
				f.params[name] = n
			}
		}
		return f
	}
}

func defaultSummary(rule, key string) string {
	if key == "" {
		return rule + " is violated"
	}
	return rule + " is violated for " + key
}

// evidenceOf is the item for per-item rules, or the fields of the
// observation the condition read.
func evidenceOf(act *expr.Activation, c *compiledRule, kr keyResult) json.RawMessage {
	var v any
	if kr.item != nil {
		n, err := expr.JSONValue(kr.item)
		if err != nil {
			return nil
		}
		v = n
	} else {
		fields := map[string]any{}
		for _, chain := range c.evidence {
			val, ok := pathValue(act, chain)
			if !ok {
				continue
			}
			n, err := expr.JSONValue(val)
			if err != nil {
				continue
			}
			fields[strings.Join(chain, ".")] = n
		}
		if len(fields) == 0 {
			return nil
		}
		v = fields
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}

func ruleErrorFire(o observation, rule string, errs []error) fireFunc {
	return func() firing {
		msgs := make([]string, 0, len(errs))
		for i, err := range errs {
			if i == 5 {
				msgs = append(msgs, fmt.Sprintf("and %d more", len(errs)-5))
				break
			}
			msgs = append(msgs, err.Error())
		}
		text := strings.Join(msgs, "; ")
		ev, _ := json.Marshal(map[string]any{"errors": len(errs), "observation": o.id})
		return firing{
			severity: schemas.SeverityWarning,
			summary:  fmt.Sprintf("rule %s cannot be evaluated on %s/%s: %s", rule, o.subject, o.instance, msgs[0]),
			labels:   map[string]string{"rule": rule},
			evidence: ev,
			errText:  text,
		}
	}
}

// visit applies result r at now to the alert of rule/key: read, publish a
// leftover outbox, Step, compare-and-swap the new state with its events,
// publish them, clear the outbox. On a conflict it starts over on the newer
// record, where Step ignores the observation if a newer one was applied.
func (p *pass) visit(ctx context.Context, r *Rule, key string, res Result, now time.Time, cause string, fire fireFunc) error {
	e := p.e
	id := fpID{subject: p.subject, instance: p.instance, rule: r.Name, key: key}
	fp := id.fingerprint()
	timing := r.Timing()
	for attempt := 0; attempt <= e.cfg.MaxConflictRetries; attempt++ {
		raw, rev, err := e.store.Get(ctx, fp)
		var (
			cur Alert
			x   alertExtra
		)
		switch {
		case errors.Is(err, schemas.ErrKeyNotFound):
			rev = 0
		case err != nil:
			return fmt.Errorf("read alert %s: %w", fp, err)
		default:
			if cur, x, err = decodeAlert(raw); err != nil {
				return err
			}
		}
		// Events committed by an earlier transition whose publisher may
		// have died: publish them first (same ids: deduplicated).
		leftover := len(x.Outbox) > 0
		if leftover {
			if err := e.flush(ctx, p.subject, x.Outbox); err != nil {
				return err
			}
		}
		next, emit := Step(cur, fp, timing, res, now, cause)
		if next == cur {
			if leftover {
				x.Outbox = nil
				if err := e.clearOutbox(ctx, id, cur, x, rev); err != nil {
					return err
				}
			}
			p.noteDone(r.Name, key, cur)
			return nil
		}
		nx := x
		nx.Outbox = nil
		err = nil
		switch emit {
		case EmitFiring:
			var f firing
			if fire != nil {
				f = fire()
			}
			nx = alertExtra{Severity: f.severity, Summary: f.summary, Description: f.description, Labels: f.labels, Evidence: f.evidence, Error: f.errText}
			if nx.Severity == "" {
				nx.Severity = r.Severity
			}
			if nx.Summary == "" {
				nx.Summary = defaultSummary(r.Name, key)
			}
			nx.Outbox, err = e.firingEvents(id, next, nx, f, cause)
		case EmitResolved:
			nx.Outbox, err = e.resolvedEvents(id, next, nx, cause)
		}
		if err != nil {
			return err
		}
		b, err := encodeAlert(id, next, nx)
		if err != nil {
			return err
		}
		newRev, err := e.store.CompareAndSwap(ctx, fp, b, rev)
		if errors.Is(err, schemas.ErrRevisionConflict) {
			e.m.conflicts.WithLabelValues(p.subject).Inc()
			continue
		}
		if err != nil {
			return fmt.Errorf("write alert %s: %w", fp, err)
		}
		if len(nx.Outbox) > 0 {
			if err := e.flush(ctx, p.subject, nx.Outbox); err != nil {
				// Committed: the outbox stays, and the retry of this
				// observation (or the next one) publishes it.
				return err
			}
			nx.Outbox = nil
			if err := e.clearOutbox(ctx, id, next, nx, newRev); err != nil {
				return err
			}
		}
		p.noteDone(r.Name, key, next)
		return nil
	}
	return fmt.Errorf("write alert %s: %d conflicts in a row: %w", fp, e.cfg.MaxConflictRetries+1, schemas.ErrRevisionConflict)
}

// clearOutbox removes published events from the record. Losing the race is
// fine: whoever wrote first had published the outbox before replacing it.
func (e *Engine) clearOutbox(ctx context.Context, id fpID, a Alert, x alertExtra, rev uint64) error {
	b, err := encodeAlert(id, a, x)
	if err != nil {
		return err
	}
	if _, err := e.store.CompareAndSwap(ctx, id.fingerprint(), b, rev); err != nil && !errors.Is(err, schemas.ErrRevisionConflict) {
		return fmt.Errorf("clear outbox of %s: %w", id.fingerprint(), err)
	}
	return nil
}

func (p *pass) noteDone(rule, key string, a Alert) {
	if a.State != Inactive && a.State != Resolved {
		return
	}
	if _, ok := p.inst.tracked(rule, key); ok {
		p.done = append(p.done, doneAlert{rule: rule, key: key, lastEvalAt: a.LastEvalAt})
	}
}

// untrackDone removes keys whose alerts are over from the instance record.
// A key is removed only if it was not added after the alert was seen over:
// whoever adds a key (at its observation's time) before writing the alert
// either loses to the newer alert state or is newer than it.
func (p *pass) untrackDone(ctx context.Context) error {
	if len(p.done) == 0 {
		return nil
	}
	return p.e.update(ctx, p.subject, instanceKey(p.subject, p.instance), func(cur instanceRecord, exists bool) (instanceRecord, bool, error) {
		if !exists {
			return cur, false, nil
		}
		next := cur.clone()
		changed := false
		for _, d := range p.done {
			if at, ok := next.tracked(d.rule, d.key); ok && !at.After(d.lastEvalAt) {
				next.untrack(d.rule, d.key)
				changed = true
			}
		}
		return next, changed, nil
	})
}

// trackLate adds rule_error keys for errors found while rendering, before
// their alerts are written.
func (p *pass) trackLate(ctx context.Context, rules []string, at time.Time) error {
	return p.e.update(ctx, p.subject, instanceKey(p.subject, p.instance), func(cur instanceRecord, exists bool) (instanceRecord, bool, error) {
		next := cur.clone()
		changed := false
		for _, r := range rules {
			if next.track(RuleError, r, at) {
				changed = true
			}
		}
		p.inst = next
		return next, changed, nil
	})
}

// stale fires observer_stale at `at` (when the instance went stale, event
// time) and resolves the alerts of rules with on_missing: resolve.
func (p *pass) stale(ctx context.Context, at time.Time, cause string) error {
	sa := p.e.staleAfter(p.sr, p.inst.IntervalMS)
	since := at.Add(-sa)
	fire := func() firing {
		ev, _ := json.Marshal(map[string]any{"last_observation_at": since.UTC().Format(time.RFC3339Nano), "stale_after": sa.String()})
		return firing{
			severity: schemas.SeverityWarning,
			summary:  fmt.Sprintf("no observation of %s/%s for %s (last at %s)", p.subject, p.instance, sa, since.UTC().Format(time.RFC3339)),
			evidence: ev,
		}
	}
	if err := p.visit(ctx, builtinStale(), "", ResultTrue, at, cause, fire); err != nil {
		return err
	}
	for _, r := range p.sr.rules {
		if r.OnMissing != OnMissingResolve {
			continue
		}
		for _, key := range slices.Sorted(maps.Keys(p.inst.Active[r.Name])) {
			if err := p.visit(ctx, r, key, ResultMissing, at, cause, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// CheckStale fires observer_stale for every known instance whose newest
// observation was received more than its stale_after before now, at the
// event time it went stale (newest observation + stale_after), so replaying
// the same gap derives the same events. now is wall time in `operator
// evaluate` and virtual time in tests.
func (e *Engine) CheckStale(ctx context.Context, now time.Time) error {
	return e.checkStale(ctx, now, time.Time{})
}

// checkStale is CheckStale counting silence from no earlier than notBefore:
// a worker that just started has not yet consumed the backlog.
func (e *Engine) checkStale(ctx context.Context, now, notBefore time.Time) error {
	keys, err := e.instanceKeys(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, key := range keys {
		if err := e.checkInstance(ctx, key, now.UTC(), notBefore); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// instanceKeys returns the instance records to check: those seen by this
// engine and, when the store can list keys, those seen by other workers.
func (e *Engine) instanceKeys(ctx context.Context) ([]string, error) {
	e.mu.Lock()
	set := make(map[string]bool, len(e.seen))
	for k := range e.seen {
		set[k] = true
	}
	e.mu.Unlock()
	if l, ok := e.store.(KeyLister); ok {
		all, err := l.Keys(ctx)
		if err != nil {
			return nil, fmt.Errorf("list state keys: %w", err)
		}
		for _, k := range all {
			if strings.HasPrefix(k, instanceKeyPrefix) {
				set[k] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(set)), nil
}

func (e *Engine) checkInstance(ctx context.Context, key string, now, notBefore time.Time) error {
	raw, _, err := e.store.Get(ctx, key)
	if errors.Is(err, schemas.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read instance record %s: %w", key, err)
	}
	var cur instanceRecord
	if err := json.Unmarshal(raw, &cur); err != nil {
		return fmt.Errorf("decode instance record %s: %w", key, err)
	}
	sr := e.rules[cur.Subject]
	if sr == nil || cur.LastObservationAt.IsZero() {
		return nil
	}
	sa := e.staleAfter(sr, cur.IntervalMS)
	from := cur.LastReceivedAt
	if notBefore.After(from) {
		from = notBefore
	}
	if now.Sub(from) <= sa {
		return nil
	}
	at := cur.LastObservationAt.Add(sa).UTC()
	var inst instanceRecord
	stillStale := false
	err = e.update(ctx, cur.Subject, key, func(c instanceRecord, exists bool) (instanceRecord, bool, error) {
		stillStale = exists && c.LastObservationID == cur.LastObservationID && c.LastObservationAt.Equal(cur.LastObservationAt)
		inst = c
		if !stillStale {
			return c, false, nil // an observation arrived meanwhile
		}
		next := c.clone()
		changed := next.track(RuleObserverStale, "", at)
		inst = next
		return next, changed, nil
	})
	if err != nil || !stillStale {
		return err
	}
	p := &pass{e: e, sr: sr, subject: cur.Subject, instance: cur.Instance, inst: inst}
	if err := p.stale(ctx, at, cur.LastObservationID); err != nil {
		return err
	}
	return p.untrackDone(ctx)
}

// firingEvents builds the firing violation and, for a rule with
// remediate, its action request.
func (e *Engine) firingEvents(id fpID, a Alert, x alertExtra, f firing, cause string) ([]publication, error) {
	v, err := e.violation(id, a, schemas.StatusFiring, x, cause, a.FiredAt)
	if err != nil {
		return nil, err
	}
	out := []publication{v.pub}
	if f.action == "" {
		return out, nil
	}
	reqID := schemas.DeriveID(a.Episode, f.action)
	params := f.params
	if params == nil {
		params = map[string]any{}
	}
	req := schemas.ActionRequest{
		ID:          reqID,
		Subject:     id.subject,
		Instance:    id.instance,
		Action:      f.action,
		Params:      params,
		Reason:      x.Summary,
		RequestedBy: e.source + "/" + id.rule,
		RequestedAt: a.FiredAt.UTC(),
		Violation:   &schemas.ViolationRef{Fingerprint: id.fingerprint(), Episode: a.Episode, Rule: id.rule, Key: id.key},
	}
	subj, err := e.subjects.ActionRequested(id.subject, id.instance)
	if err != nil {
		return nil, err
	}
	ev, err := schemas.NewEvent(schemas.EventSpec{
		Type:          schemas.TypeActionRequested,
		Source:        e.source,
		Subject:       id.subject + "/" + id.instance,
		ID:            reqID,
		Time:          a.FiredAt,
		CorrelationID: a.Episode,
		CausationID:   v.id,
	}, req)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode action request: %w", err)
	}
	return append(out, publication{Subject: subj, Kind: "action", Status: f.action, Event: b}), nil
}

func (e *Engine) resolvedEvents(id fpID, a Alert, x alertExtra, cause string) ([]publication, error) {
	v, err := e.violation(id, a, schemas.StatusResolved, x, cause, a.ResolvedAt)
	if err != nil {
		return nil, err
	}
	return []publication{v.pub}, nil
}

type builtViolation struct {
	id  string
	pub publication
}

func (e *Engine) violation(id fpID, a Alert, status string, x alertExtra, cause string, at time.Time) (builtViolation, error) {
	fp := id.fingerprint()
	data := schemas.Violation{
		Subject:     id.subject,
		Instance:    id.instance,
		Rule:        id.rule,
		Key:         id.key,
		Fingerprint: fp,
		Status:      status,
		Severity:    x.Severity,
		Summary:     x.Summary,
		Description: x.Description,
		Labels:      x.Labels,
		Evidence:    x.Evidence,
		Episode:     a.Episode,
		ActiveAt:    a.ActiveAt.UTC(),
		FiredAt:     timePtr(a.FiredAt),
		Error:       x.Error,
	}
	if status == schemas.StatusResolved {
		data.ResolvedAt = timePtr(a.ResolvedAt)
	}
	evID := schemas.DeriveID(fp, a.Episode, status)
	subj, err := e.subjects.Violation(id.subject, id.instance, id.rule)
	if err != nil {
		return builtViolation{}, err
	}
	ev, err := schemas.NewEvent(schemas.EventSpec{
		Type:          schemas.TypeViolation,
		Source:        e.source,
		Subject:       fp,
		ID:            evID,
		Time:          at,
		CorrelationID: a.Episode,
		CausationID:   cause,
	}, data)
	if err != nil {
		return builtViolation{}, err
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return builtViolation{}, fmt.Errorf("encode violation: %w", err)
	}
	return builtViolation{id: evID, pub: publication{Subject: subj, Kind: "violation", Status: status, Event: b}}, nil
}

// flush publishes events in order.
func (e *Engine) flush(ctx context.Context, subject string, pubs []publication) error {
	for _, p := range pubs {
		var ev event.Event
		dec := json.NewDecoder(bytes.NewReader(p.Event))
		if err := dec.Decode(&ev); err != nil {
			return fmt.Errorf("decode outbox event: %w", err)
		}
		if err := e.pub.Publish(ctx, p.Subject, ev); err != nil {
			return fmt.Errorf("publish %s %s: %w", ev.Type(), ev.ID(), err)
		}
		corr := schemas.Extension(ev, schemas.ExtCorrelationID)
		switch p.Kind {
		case "violation":
			e.m.violations.WithLabelValues(subject, p.Status).Inc()
			e.log.Info("violation published", "status", p.Status, "subject", subject, "fingerprint", ev.Subject(),
				"event_id", ev.ID(), "correlation_id", corr)
		case "action":
			e.m.actions.WithLabelValues(subject, p.Status).Inc()
			e.log.Info("action request published", "action", p.Status, "subject", subject, "target", ev.Subject(),
				"event_id", ev.ID(), "correlation_id", corr)
		}
	}
	return nil
}
