package tests

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/operator-dev/operator"

// goList runs `go list -deps -json` on patterns and returns every package
// it prints, by import path: the packages the patterns match (DepOnly
// false) and everything they import, directly or not.
func goList(t *testing.T, patterns ...string) map[string]listedPackage {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no go command on PATH: %v", err)
		}
		t.Skip("no go command on PATH")
	}
	cmd := exec.Command("go", append([]string{"list", "-deps", "-json"}, patterns...)...)
	cmd.Dir = ".."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	pkgs := map[string]listedPackage{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs[p.ImportPath] = p
	}
	return pkgs
}

type listedPackage struct {
	ImportPath string
	DepOnly    bool
	Imports    []string
	Deps       []string
}

// subjectPackage reports whether path is subject code: a subject's
// observer or executor, the rate limiter service and its client, or a
// subject's API client.
func subjectPackage(path string) bool {
	rel, ok := strings.CutPrefix(path, module+"/")
	if !ok {
		return false
	}
	for _, prefix := range []string{"observers/", "actuators/"} {
		if rest, ok := strings.CutPrefix(rel, prefix); ok && rest != "" {
			return true
		}
	}
	for _, root := range []string{"ratelimiter", "internal/pdapi", "internal/tikvmetrics"} {
		if rel == root || strings.HasPrefix(rel, root+"/") {
			return true
		}
	}
	return false
}

// chain returns one import path from root to target, for the message.
func chain(pkgs map[string]listedPackage, root, target string) []string {
	prev := map[string]string{root: ""}
	queue := []string{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p == target {
			var out []string
			for ; p != ""; p = prev[p] {
				out = append([]string{strings.TrimPrefix(p, module+"/")}, out...)
			}
			return out
		}
		for _, imp := range pkgs[p].Imports {
			if _, seen := prev[imp]; !seen {
				prev[imp] = p
				queue = append(queue, imp)
			}
		}
	}
	return []string{root, "?", target}
}

// TestCoreImportsNoSubject proves the design's main rule: nothing in the
// generic core (evaluators/, the generic actuators package, schemas/,
// internal/bus) imports a subject, so a new subject needs no change to it.
func TestCoreImportsNoSubject(t *testing.T) {
	core := []string{"./evaluators/...", "./actuators", "./schemas/...", "./internal/bus/...", "./observers"}
	pkgs := goList(t, core...)
	roots := 0
	for _, p := range pkgs {
		if p.DepOnly {
			continue
		}
		roots++
		for _, dep := range p.Deps {
			if subjectPackage(dep) {
				t.Errorf("%s imports subject package %s: %s", p.ImportPath, dep, strings.Join(chain(pkgs, p.ImportPath, dep), " → "))
			}
		}
	}
	if roots < 5 {
		t.Fatalf("go list matched %d core packages; the patterns are wrong", roots)
	}
}

// TestSubjectPackagesAreSeen checks the check: the wiring in cmd/operator
// does import every subject, so the test above would see one in the core.
func TestSubjectPackagesAreSeen(t *testing.T) {
	pkgs := goList(t, "./cmd/operator")
	main := pkgs[module+"/cmd/operator"]
	for _, want := range []string{"observers/tikv", "actuators/tikv", "observers/ratelimiter", "actuators/ratelimiter", "ratelimiter"} {
		if !slices.Contains(main.Deps, module+"/"+want) {
			t.Errorf("cmd/operator does not import %s: the import check could not tell", want)
		}
		if !subjectPackage(module + "/" + want) {
			t.Errorf("%s is not recognised as a subject package", want)
		}
	}
	for _, core := range []string{"evaluators", "actuators", "observers", "schemas", "internal/bus"} {
		if subjectPackage(module + "/" + core) {
			t.Errorf("core package %s is taken for a subject package", core)
		}
	}
}
