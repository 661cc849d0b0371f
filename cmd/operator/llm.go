package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/operator-dev/operator/diagnosis"
	"github.com/operator-dev/operator/diagnosis/llm"
)

// llmFlags choose an LLM to reason over the evidence instead of the
// playbook alone.
type llmFlags struct {
	provider string
	model    string
	baseURL  string
	redact   bool
	timeout  time.Duration
	maxTools int
}

func addLLMFlags(cmd *cobra.Command, f *llmFlags) {
	fs := cmd.Flags()
	fs.StringVar(&f.provider, "llm", "", "reason with an LLM over the evidence: anthropic (needs ANTHROPIC_API_KEY); empty: the playbook alone")
	fs.StringVar(&f.model, "llm-model", llm.DefaultModel, "the model that diagnoses")
	fs.StringVar(&f.baseURL, "llm-url", "", "the Messages API's address, for a proxy (empty: the provider's own)")
	fs.BoolVar(&f.redact, "redact", false, "replace names and keys (instances, nodes, keys, addresses) with placeholders before anything is sent to the LLM")
	fs.DurationVar(&f.timeout, "llm-timeout", llm.DefaultTimeout, "bound on the LLM's part of one diagnosis; past it the playbook's answer is published")
	fs.IntVar(&f.maxTools, "llm-max-tools", llm.DefaultMaxToolCalls, "read-only tool calls (observations, GETs, queries) the LLM may make per diagnosis")
}

// reasoner returns the configured LLM reasoner, or nil for the playbook
// alone.
func (f llmFlags) reasoner(log *slog.Logger) (diagnosis.Reasoner, error) {
	switch f.provider {
	case "":
		return nil, nil
	case "anthropic":
		key := os.Getenv("ANTHROPIC_API_KEY")
		if key == "" {
			return nil, errors.New("--llm anthropic needs ANTHROPIC_API_KEY in the environment")
		}
		maxTools := f.maxTools
		if maxTools == 0 {
			maxTools = -1 // llm.Config reads 0 as its default; the flag's 0 means none
		}
		return llm.New(llm.Config{APIKey: key, Model: f.model, BaseURL: f.baseURL, Redact: f.redact, Timeout: f.timeout,
			MaxToolCalls: maxTools, Logger: log.With("component", "llm")})
	}
	return nil, fmt.Errorf("--llm %q: the known provider is anthropic", f.provider)
}
