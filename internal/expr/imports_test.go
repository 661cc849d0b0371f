package expr

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestImports proves the package's place at the bottom: it serves both
// evaluators and actuators, so it imports neither, nor any subject package
// nor NATS.
func TestImports(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no go command on PATH: %v", err)
		}
		t.Skip("no go command on PATH")
	}
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const mod = "github.com/operator-dev/operator/"
	for _, dep := range strings.Fields(string(out)) {
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
