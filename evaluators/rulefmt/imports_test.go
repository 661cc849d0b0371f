package rulefmt

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestImports proves the format stands alone: it parses, and leaves
// compiling and running rules to evaluators.
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
		if strings.HasPrefix(dep, mod) && dep != mod+"schemas" && dep != mod+"evaluators/rulefmt" ||
			strings.HasPrefix(dep, "cel.dev/") || strings.HasPrefix(dep, "github.com/nats-io/") {
			t.Errorf("rulefmt depends on %s", dep)
		}
	}
}
