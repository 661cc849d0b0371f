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

// subjectPackage reports whether path is subject code: a subject's folder
// under subjects/ (its observer, executor, clients and fakes), or the rate
// limiter service and its client. The contract (subjects) and its checks
// (subjects/subjectstest) are core.
func subjectPackage(path string) bool {
	rel, ok := strings.CutPrefix(path, module+"/")
	if !ok {
		return false
	}
	if rest, ok := strings.CutPrefix(rel, "subjects/"); ok {
		return rest != "subjectstest" && !strings.HasPrefix(rest, "subjectstest/")
	}
	return rel == "ratelimiter" || strings.HasPrefix(rel, "ratelimiter/")
}

// subjectRoots lists the subjects' folders: subjects/<name>.
func subjectRoots(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("../subjects")
	if err != nil {
		t.Fatal(err)
	}
	var roots []string
	for _, e := range entries {
		if e.IsDir() && e.Name() != "subjectstest" {
			roots = append(roots, "subjects/"+e.Name())
		}
	}
	if len(roots) < 2 {
		t.Fatalf("found subjects %v; the shipped ones are missing", roots)
	}
	return roots
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
// generic core (evaluators/, actuators/, observers/, schemas/, internal/,
// the subjects contract, the pipeline) imports a subject, so a new subject
// needs no change to it.
func TestCoreImportsNoSubject(t *testing.T) {
	core := []string{"./evaluators/...", "./actuators/...", "./schemas/...", "./internal/...", "./observers/...",
		"./subjects", "./subjects/subjectstest", "./pipeline"}
	pkgs := goList(t, core...)
	roots := 0
	for _, p := range pkgs {
		if p.DepOnly {
			continue
		}
		roots++
		if subjectPackage(p.ImportPath) {
			t.Errorf("%s is subject code inside the core", p.ImportPath)
		}
		for _, dep := range p.Deps {
			if subjectPackage(dep) {
				t.Errorf("%s imports subject package %s: %s", p.ImportPath, dep, strings.Join(chain(pkgs, p.ImportPath, dep), " → "))
			}
		}
	}
	if roots < 8 {
		t.Fatalf("go list matched %d core packages; the patterns are wrong", roots)
	}
}

// TestEverySubjectIsRegistered checks the check and the registry: the
// binary imports every subject folder (a folder left out of the one list in
// cmd/operator would be dead code), and each is recognised as subject code,
// so the test above would see one in the core.
func TestEverySubjectIsRegistered(t *testing.T) {
	pkgs := goList(t, "./cmd/operator")
	main := pkgs[module+"/cmd/operator"]
	for _, want := range append(subjectRoots(t), "ratelimiter") {
		if !slices.Contains(main.Deps, module+"/"+want) {
			t.Errorf("cmd/operator does not import %s: is it in the registry?", want)
		}
		if !subjectPackage(module + "/" + want) {
			t.Errorf("%s is not recognised as a subject package", want)
		}
	}
	for _, core := range []string{"evaluators", "actuators", "observers", "schemas", "internal/bus", "subjects", "pipeline"} {
		if subjectPackage(module + "/" + core) {
			t.Errorf("core package %s is taken for a subject package", core)
		}
	}
}
