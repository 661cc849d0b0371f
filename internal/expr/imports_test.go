package expr

import (
	"strings"
	"testing"

	"github.com/operator-dev/operator/internal/importcheck"
)

// TestImports proves the package's place at the bottom: it serves both
// evaluators and actuators, so it imports neither, nor any subject package
// nor NATS.
func TestImports(t *testing.T) {
	const mod = "github.com/operator-dev/operator/"
	for _, dep := range importcheck.Deps(t, ".") {
		switch {
		case strings.HasPrefix(dep, "github.com/nats-io/"),
			strings.HasPrefix(dep, mod+"evaluators"),
			strings.HasPrefix(dep, mod+"actuators"),
			strings.HasPrefix(dep, mod+"observers"),
			strings.HasPrefix(dep, mod+"ratelimiter"),
			strings.HasPrefix(dep, mod+"internal/") && dep != mod+"internal/expr":
			t.Errorf("expr depends on %s", dep)
		}
	}
}
