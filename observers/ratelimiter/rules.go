package ratelimiter

import _ "embed"

//go:embed rules.yaml
var rulesYAML []byte

// RulesFile is the name the embedded rule set is loaded under, so load-time
// errors point at the file in the repository.
const RulesFile = "observers/ratelimiter/rules.yaml"

// Rules returns the rate limiter's rule set (rules.yaml) as shipped.
func Rules() []byte { return append([]byte(nil), rulesYAML...) }
