package actuators

import (
	"testing"

	"github.com/operator-dev/operator/internal/importcheck"
)

// forbiddenGeneric are what the generic worker must not depend on beyond
// importcheck.NoProcess: a subject's storage, server or client (subjects plug
// in through Subject) and the other stages.
var forbiddenGeneric = map[string]string{
	"github.com/redis/go-redis/v9":                        "executors use the subject's API, not its storage",
	"github.com/operator-dev/operator/ratelimiter":        "a subject's server",
	"github.com/operator-dev/operator/ratelimiter/client": "a subject's client",
	"github.com/operator-dev/operator/observers":          "observers are another stage",
	"github.com/operator-dev/operator/subjects":           "subjects plug in through Subject",
}

// TestNoShell proves that no code path of the generic worker can run a
// process or a shell: its whole import graph is free of os/exec and NATS
// and of every subject, and none of its files, tests included, imports
// os/exec or calls a process-starting function. Each subject proves the
// same of its executor (subjects/subjectstest).
func TestNoShell(t *testing.T) {
	importcheck.Forbid(t, "github.com/operator-dev/operator/actuators", ".", importcheck.NoProcess, forbiddenGeneric)
	importcheck.NoProcessInSource(t, ".")
}
