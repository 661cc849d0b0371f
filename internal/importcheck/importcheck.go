// Package importcheck proves, in tests, what a package can never do: what it
// may not depend on through its whole import graph, and that none of its
// source files runs a process. The actuators and every subject run it, so
// that no action can ever run a shell.
package importcheck

import (
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// NoProcess lists what runs processes or reaches the bus behind a worker's
// back: no action, executor or observer may depend on it.
var NoProcess = map[string]string{
	"os/exec":                    "runs processes",
	"github.com/nats-io/nats.go": "NATS belongs to internal/bus",
	"github.com/nats-io/nats-server/v2/server":      "NATS belongs to internal/bus",
	"github.com/operator-dev/operator/internal/bus": "the bus is reached through the core's interfaces",
}

// processCalls start processes without os/exec.
var processCalls = map[string]bool{
	"os.StartProcess": true, "syscall.Exec": true, "syscall.ForkExec": true, "syscall.StartProcess": true,
}

// Forbid fails t when the package in dir (import path pkg) depends, directly
// or not, on a package of forbidden (path → why). It does not follow test
// files.
func Forbid(t *testing.T, pkg, dir string, forbidden ...map[string]string) {
	t.Helper()
	ForbidBeyond(t, pkg, dir, nil, forbidden...)
}

// ForbidBeyond is Forbid with the packages of fence (path → why) taken as
// leaves: what they import is not followed. A fence is for a dependency the
// package uses for something other than its actions, said in why.
func ForbidBeyond(t *testing.T, pkg, dir string, fence map[string]string, forbidden ...map[string]string) {
	t.Helper()
	graph := graphBeyond(t, pkg, dir, fence)
	if len(graph) < 10 {
		t.Fatalf("%s: import graph has only %d packages; the walk is broken", pkg, len(graph))
	}
	for _, f := range forbidden {
		for path, why := range f {
			if via, ok := graph[path]; ok {
				t.Errorf("%s depends on %s (%s), imported by %s", pkg, path, why, via)
			}
		}
	}
}

// Graph returns every package pkg (in dir) depends on, not its tests,
// mapped to one package that imports it.
func Graph(t *testing.T, pkg, dir string) map[string]string {
	t.Helper()
	return graphBeyond(t, pkg, dir, nil)
}

func graphBeyond(t *testing.T, pkg, dir string, fence map[string]string) map[string]string {
	t.Helper()
	ctx := build.Default
	seen := map[string]string{}
	var walk func(path, srcDir, from string)
	walk = func(path, srcDir, from string) {
		if path == "C" || path == "unsafe" {
			return
		}
		if _, ok := seen[path]; ok {
			return
		}
		seen[path] = from
		if _, ok := fence[path]; ok {
			return
		}
		p, err := ctx.Import(path, srcDir, 0)
		if err != nil {
			t.Fatalf("import %s (from %s): %v", path, from, err)
		}
		for _, imp := range p.Imports {
			walk(imp, p.Dir, path)
		}
	}
	walk(pkg, dir, "")
	delete(seen, pkg)
	return seen
}

// PackageDirs returns the directories under root with non-test Go files.
func PackageDirs(t *testing.T, root string) []string {
	t.Helper()
	seen := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			seen[filepath.Dir(path)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	dirs := make([]string, 0, len(seen))
	for d := range seen {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	return dirs
}

// NoProcessInSource parses every Go file under root, tests included, and
// fails on an os/exec import or a call of a process-starting function.
func NoProcessInSource(t *testing.T, root string) {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if strings.HasSuffix(path, ".go") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	if len(files) < 2 {
		t.Fatalf("found only %d Go files under %s", len(files), root)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		file, err := parser.ParseFile(fset, f, src, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range file.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == "os/exec" {
				t.Errorf("%s imports os/exec", fset.Position(imp.Pos()))
			}
		}
		ast.Inspect(file, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && processCalls[id.Name+"."+sel.Sel.Name] {
				t.Errorf("%s uses %s.%s", fset.Position(sel.Pos()), id.Name, sel.Sel.Name)
			}
			return true
		})
	}
}

// Deps lists every package the package in dir depends on, itself included,
// as `go list -deps` does. Without the go command the test is skipped, or
// fails under CI=true, where a missing tool must not pass for green.
func Deps(t *testing.T, dir string) []string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no go command on PATH: %v", err)
		}
		t.Skip("no go command on PATH")
	}
	cmd := exec.Command("go", "list", "-deps", ".")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	return strings.Fields(string(out))
}
