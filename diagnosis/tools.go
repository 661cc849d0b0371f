package diagnosis

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/operator-dev/operator/schemas"
)

// tools are the read-only tools a reasoner may call for more evidence:
// each runs one of the playbook's source kinds with the reasoner's
// parameters. None of them can change the subject.
type tools struct {
	g   *gatherer
	pb  *Playbook
	vio schemas.Violation

	mu sync.Mutex
	n  int
}

var _ ToolRunner = (*tools)(nil)

// Tool names.
const (
	ToolObservations = "recent_observations"
	ToolAlerts       = "other_alerts"
	ToolActions      = "recent_actions"
	ToolHTTPGet      = "http_get"
	ToolPrometheus   = "prometheus_query"
)

// Tools lists the tools this violation's subject supports: http_get only
// with an API to read, prometheus_query only with a Prometheus.
func (t *tools) Tools() []Tool {
	list := []Tool{
		{Name: ToolObservations, Description: "The latest observations of the instance (its full observed state), oldest first.",
			InputSchema: json.RawMessage(`{"type":"object","properties":{"last":{"type":"integer","minimum":1,"maximum":20,"description":"how many"}},"required":["last"],"additionalProperties":false}`)},
		{Name: ToolAlerts, Description: "The other alerts pending or firing on the instance.",
			InputSchema: json.RawMessage(`{"type":"object","properties":{},"additionalProperties":false}`)},
		{Name: ToolActions, Description: "The action requests on the instance within a window, newest first, with their outcomes.",
			InputSchema: json.RawMessage(`{"type":"object","properties":{"within":{"type":"string","description":"a Go duration such as 30m"}},"required":["within"],"additionalProperties":false}`)},
	}
	if t.g.api != nil {
		list = append(list, Tool{Name: ToolHTTPGet, Description: "GET a path on the subject's own API (read-only), e.g. the paths the evidence came from.",
			InputSchema: json.RawMessage(`{"type":"object","properties":{"path":{"type":"string","pattern":"^/","description":"path and query on the subject's API"}},"required":["path"],"additionalProperties":false}`)})
	}
	if t.g.prom != nil {
		list = append(list, Tool{Name: ToolPrometheus, Description: "Run a PromQL instant query at the time the violation fired.",
			InputSchema: json.RawMessage(`{"type":"object","properties":{"query":{"type":"string"}},"required":["query"],"additionalProperties":false}`)})
	}
	return list
}

// Run runs a tool; a bad input or a failed read is an item with an error.
func (t *tools) Run(ctx context.Context, name string, input json.RawMessage) schemas.EvidenceItem {
	t.mu.Lock()
	t.n++
	id := fmt.Sprintf("tool%d_%s", t.n, name)
	t.mu.Unlock()
	var in struct {
		Last   int    `json:"last"`
		Within string `json:"within"`
		Path   string `json:"path"`
		Query  string `json:"query"`
	}
	fail := func(err error) schemas.EvidenceItem {
		return schemas.EvidenceItem{ID: id, Source: name, At: time.Now().UTC(), Error: err.Error()}
	}
	if len(input) > 0 {
		if err := json.Unmarshal(input, &in); err != nil {
			return fail(fmt.Errorf("input: %w", err))
		}
	}
	s := &Source{ID: id, Timeout: DefaultSourceTimeout}
	switch name {
	case ToolObservations:
		if in.Last < 1 || in.Last > 20 {
			return fail(fmt.Errorf("last must be from 1 to 20, got %d", in.Last))
		}
		s.Kind, s.Last, s.Within = SourceObservations, in.Last, time.Duration(in.Last+2)*time.Minute
	case ToolAlerts:
		s.Kind = SourceAlerts
	case ToolActions:
		d, err := time.ParseDuration(in.Within)
		if err != nil || d <= 0 || d > 7*24*time.Hour {
			return fail(fmt.Errorf("within must be a duration up to 168h, got %q", in.Within))
		}
		s.Kind, s.Within = SourceActions, d
	case ToolHTTPGet:
		if len(in.Path) == 0 || in.Path[0] != '/' {
			return fail(fmt.Errorf("path must start with /, got %q", in.Path))
		}
		s.Kind, s.Path, s.path = SourceHTTP, in.Path, literal(in.Path)
	case ToolPrometheus:
		if in.Query == "" {
			return fail(fmt.Errorf("query is empty"))
		}
		s.Kind, s.Query, s.query = SourcePrometheus, in.Query, literal(in.Query)
	default:
		return fail(fmt.Errorf("no tool %q", name))
	}
	sctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	item, _ := t.g.read(sctx, s, violationVar(t.vio), t.vio)
	return item
}
