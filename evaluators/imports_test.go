package evaluators

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports proves the package's dependency rule: no subject package and
// no NATS, directly or through another package.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list unavailable: %v", err)
	}
	const mod = "github.com/operator-dev/operator/"
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case strings.HasPrefix(dep, "github.com/nats-io/"),
			strings.HasPrefix(dep, mod+"observers"),
			strings.HasPrefix(dep, mod+"actuators"),
			strings.HasPrefix(dep, mod+"ratelimiter"),
			strings.HasPrefix(dep, mod+"internal/bus"):
			t.Errorf("evaluators depends on %s", dep)
		}
	}
}
