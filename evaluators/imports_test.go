package evaluators

import (
	"strings"
	"testing"

	"github.com/operator-dev/operator/internal/importcheck"
)

// TestImports proves the package's dependency rule: no subject package and
// no NATS, directly or through another package.
func TestImports(t *testing.T) {
	const mod = "github.com/operator-dev/operator/"
	for _, dep := range importcheck.Deps(t, ".") {
		switch {
		case strings.HasPrefix(dep, "github.com/nats-io/"),
			strings.HasPrefix(dep, mod+"observers"),
			strings.HasPrefix(dep, mod+"actuators"),
			strings.HasPrefix(dep, mod+"ratelimiter"),
			strings.HasPrefix(dep, mod+"subjects"),
			strings.HasPrefix(dep, mod+"pipeline"),
			strings.HasPrefix(dep, mod+"internal/bus"):
			t.Errorf("evaluators depends on %s", dep)
		}
	}
}
