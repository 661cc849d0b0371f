package ratelimiter

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestImports keeps the dependency rules of the doc comments true: the
// service never depends on Operator's pipeline, and the wire types, the
// client and the bench driver never depend on the server, Redis or
// Prometheus.
func TestImports(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("go tool not in PATH: %v", err)
		}
		t.Skip("go tool not in PATH")
	}
	const mod = "github.com/operator-dev/operator/"
	outside := []string{"github.com/redis/go-redis", "github.com/prometheus", "github.com/alicebob/miniredis", mod + "ratelimiter"}
	cases := []struct {
		pkg       string
		forbidden []string // a package and everything below it
	}{
		{".", []string{mod + "observers", mod + "evaluators", mod + "actuators", mod + "internal/bus", mod + "schemas"}},
		{"./api", outside},
		{"./client", outside},
		{"./bench", outside},
	}
	for _, tc := range cases {
		t.Run(tc.pkg, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", tc.pkg).CombinedOutput()
			if err != nil {
				t.Fatalf("go list: %v\n%s", err, out)
			}
			self := mod + "ratelimiter" + strings.TrimPrefix(tc.pkg, ".")
			for _, dep := range strings.Fields(string(out)) {
				if dep == self || dep == mod+"ratelimiter/api" {
					continue // itself, and the shared wire types
				}
				for _, f := range tc.forbidden {
					if dep == f || strings.HasPrefix(dep, f+"/") {
						t.Errorf("%s depends on %s", tc.pkg, dep)
					}
				}
			}
		})
	}
}
