package diagnosis

import (
	"context"
	"encoding/json"

	"github.com/operator-dev/operator/actuators"
	"github.com/operator-dev/operator/schemas"
)

// A Reasoner turns gathered evidence into ranked hypotheses. The
// deterministic reasoner evaluates the playbook; an LLM reasoner asks a
// model. Implementations must be safe for concurrent use.
type Reasoner interface {
	Reason(ctx context.Context, in *Input) (Output, error)
}

// Input is what a reasoner works from.
type Input struct {
	Violation schemas.Violation
	// Evidence is what the playbook's sources gave, failed items included,
	// in playbook order.
	Evidence []schemas.EvidenceItem
	// Playbook is the subject's playbook: its hypotheses are the known
	// causes (a model may name others).
	Playbook *Playbook
	// Catalog is the subject's action catalog, for suggestions; nil when
	// the subject has none.
	Catalog *actuators.Catalog
	// Deterministic is the playbook's own answer, for a reasoner to confirm
	// or dispute; empty when nothing fit.
	Deterministic []schemas.Hypothesis
	// Tools runs a read-only tool (a source kind with its parameters) and
	// returns the evidence item it produced, for reasoners that ask for
	// more evidence as they go. It never acts on the subject.
	Tools ToolRunner
}

// ToolRunner gathers one more piece of evidence on demand.
type ToolRunner interface {
	// Tools lists the read-only tools available, with the JSON Schema of
	// their input.
	Tools() []Tool
	// Run runs tool name with its JSON input and returns the evidence item
	// it produced (with an error when the source failed). The item's id is
	// new and can be cited.
	Run(ctx context.Context, name string, input json.RawMessage) schemas.EvidenceItem
}

// Tool describes one read-only tool.
type Tool struct {
	Name        string
	Description string
	// InputSchema is a JSON Schema object.
	InputSchema json.RawMessage
}

// Output is a reasoner's answer.
type Output struct {
	// Hypotheses ranked, most credible first; empty means unknown.
	Hypotheses []schemas.Hypothesis
	// Extra evidence gathered through tools, to publish with the rest.
	Evidence []schemas.EvidenceItem
	// Notes say what the reasoner changed in its answer (a citation of
	// unknown evidence dropped, a suggestion outside the catalog removed),
	// published with the diagnosis.
	Notes []string
	// Mode is schemas.DiagnosisDeterministic or schemas.DiagnosisLLM.
	Mode string
	// Model, tokens and cost, for an LLM.
	Model        string
	InputTokens  int64
	OutputTokens int64
	CostUSD      float64
}
