package tikv

import _ "embed"

//go:embed rules.yaml
var rulesYAML []byte

//go:embed rules_test.yaml
var rulesTestYAML []byte

// RulesFile is the name the embedded rule set is loaded under, so load-time
// errors point at the file in the repository.
const RulesFile = "observers/tikv/rules.yaml"

// RulesTestFile is the rule set's unit tests in the repository, run by
// `operator rules test observers/tikv/rules_test.yaml`.
const RulesTestFile = "observers/tikv/rules_test.yaml"

// Rules returns the TiKV rule set (rules.yaml) as shipped.
func Rules() []byte { return append([]byte(nil), rulesYAML...) }

// RulesTest returns the rule set's unit tests (rules_test.yaml) as shipped.
func RulesTest() []byte { return append([]byte(nil), rulesTestYAML...) }
