package rulefmt

import (
	"strings"
	"testing"

	"github.com/operator-dev/operator/internal/importcheck"
)

// TestImports proves the format stands alone: it parses, and leaves
// compiling and running rules to evaluators.
func TestImports(t *testing.T) {
	const mod = "github.com/operator-dev/operator/"
	for _, dep := range importcheck.Deps(t, ".") {
		if strings.HasPrefix(dep, mod) && dep != mod+"schemas" && dep != mod+"evaluators/rulefmt" ||
			strings.HasPrefix(dep, "cel.dev/") || strings.HasPrefix(dep, "github.com/nats-io/") {
			t.Errorf("rulefmt depends on %s", dep)
		}
	}
}
