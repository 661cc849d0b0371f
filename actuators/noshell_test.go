package actuators

import (
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// forbiddenEverywhere are packages no package under actuators/ may depend
// on, directly or not: what runs processes, NATS (internal/bus owns it),
// Redis and the rate limiter server (executors talk to a subject's API
// through its client only).
var forbiddenEverywhere = map[string]string{
	"os/exec":                    "runs processes",
	"github.com/nats-io/nats.go": "NATS belongs to internal/bus",
	"github.com/nats-io/nats-server/v2/server":      "NATS belongs to internal/bus",
	"github.com/operator-dev/operator/internal/bus": "the worker reaches the bus through its own interfaces",
	"github.com/redis/go-redis/v9":                  "executors use the subject's API, not its storage",
	"github.com/operator-dev/operator/ratelimiter":  "the rate limiter server; executors use its client",
	"github.com/operator-dev/operator/observers":    "observers are another stage",
}

// forbiddenGeneric are subject packages the generic worker must not depend
// on: subjects plug in through Subject.
var forbiddenGeneric = map[string]string{
	"github.com/operator-dev/operator/actuators/ratelimiter": "a subject package",
	"github.com/operator-dev/operator/ratelimiter/client":    "a subject package",
	"github.com/operator-dev/operator/ratelimiter/api":       "a subject package",
	"github.com/operator-dev/operator/internal/pdapi":        "a subject package",
}

// forbiddenCalls start processes without os/exec.
var forbiddenCalls = map[string]bool{
	"os.StartProcess": true, "syscall.Exec": true, "syscall.ForkExec": true, "syscall.StartProcess": true,
}

// TestNoShell proves that no code path of the actuators can run a process
// or a shell: the whole import graph (not only the direct imports) of every
// package under actuators/ is free of os/exec, NATS and Redis, the generic
// worker's is free of every subject package, and no file under actuators/,
// tests included, imports os/exec or calls a process-starting function.
func TestNoShell(t *testing.T) {
	const module = "github.com/operator-dev/operator/actuators"
	pkgs := map[string]map[string]string{module: forbiddenGeneric}
	for _, dir := range packageDirs(t, ".") {
		if dir != "." {
			pkgs[module+"/"+filepath.ToSlash(dir)] = nil
		}
	}
	if len(pkgs) < 2 {
		t.Fatalf("found no subject packages under actuators/")
	}
	for pkg, extra := range pkgs {
		dir := "." + strings.TrimPrefix(pkg, module)
		graph := importGraph(t, pkg, dir)
		if len(graph) < 20 {
			t.Fatalf("%s: import graph has only %d packages; the walk is broken", pkg, len(graph))
		}
		for _, forbidden := range []map[string]string{forbiddenEverywhere, extra} {
			for path, why := range forbidden {
				if via, ok := graph[path]; ok {
					t.Errorf("%s depends on %s (%s), imported by %s", pkg, path, why, via)
				}
			}
		}
	}
	noProcessInSource(t, ".")
}

// packageDirs returns the directories under root with non-test Go files.
func packageDirs(t *testing.T, root string) []string {
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

// importGraph returns every package pkg depends on (not its tests), mapped
// to one package that imports it.
func importGraph(t *testing.T, pkg, dir string) map[string]string {
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

// noProcessInSource parses every Go file under root and fails on an os/exec
// import or a call of a process-starting function.
func noProcessInSource(t *testing.T, root string) {
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
	if len(files) < 5 {
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
			if id, ok := sel.X.(*ast.Ident); ok && forbiddenCalls[id.Name+"."+sel.Sel.Name] {
				t.Errorf("%s uses %s.%s", fset.Position(sel.Pos()), id.Name, sel.Sel.Name)
			}
			return true
		})
	}
}
