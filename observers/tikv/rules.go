package tikv

import (
	"embed"
	"io/fs"
)

// Names of the embedded files in [Files].
const (
	// RulesFile is the TiKV rule set.
	RulesFile = "rules.yaml"
	// RulesTestFile holds the rule set's unit tests, run by `operator rules
	// test`.
	RulesTestFile = "rules_test.yaml"
)

//go:embed rules.yaml rules_test.yaml
var files embed.FS

// Files returns the embedded rule set (RulesFile) and its tests
// (RulesTestFile), for a command that runs the TiKV rules without the
// source tree.
func Files() fs.FS { return files }
