package diagnosis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/operator-dev/operator/actuators"
	"github.com/operator-dev/operator/schemas"
)

// EventReader reads the events a stream stored on subjects matching filter
// since a time, oldest first, and returns once it has caught up.
// internal/bus satisfies it.
type EventReader interface {
	ReadFiltered(ctx context.Context, stream, filter string, since time.Time, fn func(subject string, e event.Event, err error) error) error
}

// AlertStore is the evaluator's state bucket, read to find the other alerts
// of an instance. internal/bus's KV satisfies it.
type AlertStore interface {
	Keys(ctx context.Context) ([]string, error)
	Get(ctx context.Context, key string) ([]byte, uint64, error)
}

// A Getter reads a subject's API: GET only, so evidence gathering can never
// change the subject. source names what was read, for the evidence item.
type Getter interface {
	Get(ctx context.Context, path string) (body []byte, source string, err error)
}

// A Querier runs Prometheus instant queries; source names the query and the
// server.
type Querier interface {
	Query(ctx context.Context, query string, at time.Time) (result json.RawMessage, source string, err error)
}

// gatherer reads a playbook's sources for one violation.
type gatherer struct {
	subjects schemas.Subjects
	events   EventReader
	actions  actuators.EventReader
	alerts   AlertStore
	api      Getter
	prom     Querier
	maxBytes int
}

// gathered is the evidence of one violation: the items to publish and the
// data CEL sees (the items' data as published, capped).
type gathered struct {
	items []schemas.EvidenceItem
	data  map[string]any
}

func (g *gathered) add(item schemas.EvidenceItem, data any) {
	g.items = append(g.items, item)
	if item.Error == "" {
		g.data[item.ID] = data
	}
}

// gather reads every source of pb that applies to v, at once, each bounded
// by its timeout, and returns them in playbook order. A source that fails
// gives an item with the error.
func (g *gatherer) gather(ctx context.Context, pb *Playbook, v map[string]any, vio schemas.Violation) *gathered {
	out := &gathered{data: map[string]any{}}
	var sources []*Source
	for _, s := range pb.Evidence {
		if s.appliesTo(vio.Rule) {
			sources = append(sources, s)
		}
	}
	items := make([]schemas.EvidenceItem, len(sources))
	datas := make([]any, len(sources))
	var wg sync.WaitGroup
	for i, s := range sources {
		wg.Go(func() {
			sctx, cancel := context.WithTimeout(ctx, s.Timeout)
			defer cancel()
			items[i], datas[i] = g.read(sctx, s, v, vio)
		})
	}
	wg.Wait()
	for i := range items {
		out.add(items[i], datas[i])
	}
	return out
}

// read reads one source and caps its data.
func (g *gatherer) read(ctx context.Context, s *Source, v map[string]any, vio schemas.Violation) (schemas.EvidenceItem, any) {
	item := schemas.EvidenceItem{ID: s.ID, Source: s.Kind}
	data, source, err := g.readData(ctx, s, v, vio)
	item.At = time.Now().UTC()
	if source != "" {
		item.Source = source
	}
	if err == nil && s.project != nil && s.Kind != SourceObservations {
		data, err = s.project.eval(map[string]any{"violation": v, "data": data})
		if err != nil {
			err = fmt.Errorf("project %q: %w", s.Project, err)
		}
	}
	if err != nil {
		item.Error = err.Error()
		return item, nil
	}
	capped, truncated := capJSON(data, g.maxBytes)
	raw, err := json.Marshal(capped)
	if err != nil {
		item.Error = fmt.Sprintf("encode: %v", err)
		return item, nil
	}
	item.Data, item.Truncated = raw, truncated
	return item, capped
}

func (g *gatherer) readData(ctx context.Context, s *Source, v map[string]any, vio schemas.Violation) (any, string, error) {
	switch s.Kind {
	case SourceObservations:
		return g.observations(ctx, s, v, vio)
	case SourceAlerts:
		return g.otherAlerts(ctx, vio)
	case SourceActions:
		return g.recentActions(ctx, s, vio)
	case SourceHTTP:
		if g.api == nil {
			return nil, "GET " + s.Path, errors.New("no API endpoint configured for " + vio.Subject)
		}
		path, err := s.path.render(map[string]any{"violation": v, "ev": map[string]any{}, "failed": map[string]string{}}, url.PathEscape)
		if err != nil {
			return nil, "GET " + s.Path, err
		}
		body, source, err := g.api.Get(ctx, path)
		if err != nil {
			return nil, source, err
		}
		return decodeBody(body), source, nil
	case SourcePrometheus:
		if g.prom == nil {
			return nil, "prometheus: " + s.Query, errors.New("no Prometheus configured")
		}
		q, err := s.query.render(map[string]any{"violation": v, "ev": map[string]any{}, "failed": map[string]string{}}, nil)
		if err != nil {
			return nil, "prometheus: " + s.Query, err
		}
		res, source, err := g.prom.Query(ctx, q, firedAt(vio))
		if err != nil {
			return nil, source, err
		}
		return decodeBody(res), source, nil
	}
	return nil, s.Kind, fmt.Errorf("unknown source %q", s.Kind)
}

// decodeBody is the JSON a body holds, or the body as text.
func decodeBody(b []byte) any {
	var v any
	if json.Unmarshal(b, &v) == nil {
		return v
	}
	return string(b)
}

// observations reads the latest observations of the instance up to a
// little after the violation, projected.
func (g *gatherer) observations(ctx context.Context, s *Source, v map[string]any, vio schemas.Violation) (any, string, error) {
	filter, err := g.subjects.Observation(vio.Subject, vio.Instance)
	if err != nil {
		return nil, "", err
	}
	source := fmt.Sprintf("the last %d observations of %s/%s", s.Last, vio.Subject, vio.Instance)
	at := firedAt(vio)
	var window []map[string]any
	err = g.events.ReadFiltered(ctx, schemas.StreamObservations, filter, at.Add(-s.Within), func(_ string, e event.Event, err error) error {
		if err != nil || e.Type() != schemas.TypeObservation {
			return nil
		}
		var obs map[string]any
		if json.Unmarshal(e.Data(), &obs) != nil {
			return nil
		}
		window = append(window, obs)
		if len(window) > s.Last {
			window = window[1:]
		}
		return nil
	})
	if err != nil {
		return nil, source, err
	}
	if len(window) == 0 {
		return nil, source, fmt.Errorf("no observation of %s/%s within %s before the violation", vio.Subject, vio.Instance, s.Within)
	}
	all := make([]any, 0, len(window))
	for _, obs := range window {
		var p any = obs["state"]
		if s.project != nil {
			if p, err = s.project.eval(map[string]any{"violation": v, "obs": obs}); err != nil {
				return nil, source, fmt.Errorf("project %q: %w", s.Project, err)
			}
		}
		all = append(all, p)
	}
	return map[string]any{"count": len(all), "last": all[len(all)-1], "all": all}, source, nil
}

// otherAlerts lists the alerts pending or firing on the instance, the
// violation's own excepted.
func (g *gatherer) otherAlerts(ctx context.Context, vio schemas.Violation) (any, string, error) {
	source := fmt.Sprintf("alerts pending or firing on %s/%s", vio.Subject, vio.Instance)
	keys, err := g.alerts.Keys(ctx)
	if err != nil {
		return nil, source, err
	}
	prefix := vio.Subject + "/" + vio.Instance + "/"
	out := []any{}
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) || k == vio.Fingerprint {
			continue
		}
		b, _, err := g.alerts.Get(ctx, k)
		if err != nil {
			if errors.Is(err, schemas.ErrKeyNotFound) {
				continue // resolved and forgotten since the listing
			}
			return nil, source, err
		}
		var rec schemas.AlertRecord
		if json.Unmarshal(b, &rec) != nil || (rec.State != schemas.AlertPending && rec.State != schemas.AlertFiring) {
			continue
		}
		var extra struct {
			Severity string `json:"severity"`
			Summary  string `json:"summary"`
		}
		_ = json.Unmarshal(rec.Extra, &extra)
		a := map[string]any{"rule": rec.Rule, "key": rec.Key, "state": rec.State, "severity": extra.Severity, "summary": extra.Summary}
		if rec.ActiveAt != nil {
			a["since"] = rec.ActiveAt.UTC().Format(time.RFC3339Nano)
		}
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b any) int {
		x, y := a.(map[string]any), b.(map[string]any)
		return strings.Compare(fmt.Sprint(x["rule"], "/", x["key"]), fmt.Sprint(y["rule"], "/", y["key"]))
	})
	return out, source, nil
}

// recentActions lists the instance's action requests within the window,
// newest first, with their outcomes.
func (g *gatherer) recentActions(ctx context.Context, s *Source, vio schemas.Violation) (any, string, error) {
	source := fmt.Sprintf("actions on %s/%s in the last %s", vio.Subject, vio.Instance, s.Within)
	hist, err := actuators.ReadHistory(ctx, g.actions, firedAt(vio).Add(-s.Within))
	if err != nil {
		return nil, source, err
	}
	out := []any{}
	for _, h := range hist {
		if h.Request == nil || h.Request.Subject != vio.Subject || h.Request.Instance != vio.Instance {
			continue
		}
		a := map[string]any{"id": h.ID, "action": h.Request.Action, "params": h.Request.Params,
			"requested_at": h.RequestedAt.UTC().Format(time.RFC3339Nano), "requested_by": h.Request.RequestedBy,
			"outcome": h.Outcome(), "verified": h.Verified(), "reason": h.Reason()}
		out = append(out, a)
	}
	return out, source, nil
}

// capJSON returns v cut to at most max bytes of JSON, and whether it was
// cut. Lists lose their tail, objects their largest members' tails, and a
// value that still does not fit becomes a prefix of its JSON text.
func capJSON(v any, max int) (any, bool) {
	if max <= 0 || jsonSize(v) <= max {
		return v, false
	}
	switch x := v.(type) {
	case []any:
		// The longest prefix that fits, by bisection.
		lo, hi := 0, len(x)
		for lo < hi {
			mid := (lo + hi + 1) / 2
			if jsonSize(x[:mid]) <= max {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		if lo > 0 {
			return x[:lo], true
		}
	case map[string]any:
		// Cut the largest member until the whole fits.
		out := make(map[string]any, len(x))
		for k, val := range x {
			out[k] = val
		}
		for range len(out) {
			biggest, size := "", -1
			for k, val := range out {
				if s := jsonSize(val); s > size {
					biggest, size = k, s
				}
			}
			room := max - (jsonSize(out) - size)
			if room <= 16 {
				delete(out, biggest)
			} else {
				out[biggest], _ = capJSON(out[biggest], room)
			}
			if jsonSize(out) <= max {
				return out, true
			}
		}
	}
	// A prefix of the JSON text, as a string: its own quoting and escapes
	// count too, so shrink until it fits.
	b, _ := json.Marshal(v)
	text := string(b)
	for n := min(len(text), max); n > 0; n = n * 3 / 4 {
		if s := text[:n] + "..."; jsonSize(s) <= max {
			return s, true
		}
	}
	return "", true
}

func jsonSize(v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		return 0
	}
	return len(b)
}

// firedAt is the violation's event time: when it fired.
func firedAt(v schemas.Violation) time.Time {
	if v.FiredAt != nil {
		return *v.FiredAt
	}
	return v.ActiveAt
}
