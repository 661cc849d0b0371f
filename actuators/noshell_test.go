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

// forbiddenImports are packages that run processes, and the subject and
// transport packages the generic actuator must not depend on.
var forbiddenImports = map[string]string{
	"os/exec":                    "runs processes",
	"github.com/nats-io/nats.go": "NATS belongs to internal/bus",
	"github.com/nats-io/nats-server/v2/server":        "NATS belongs to internal/bus",
	"github.com/operator-dev/operator/internal/bus":   "the worker reaches the bus through its own interfaces",
	"github.com/operator-dev/operator/ratelimiter":    "a subject package",
	"github.com/operator-dev/operator/observers":      "a subject package",
	"github.com/operator-dev/operator/internal/pdapi": "a subject package",
}

// forbiddenCalls start processes without os/exec.
var forbiddenCalls = map[string]bool{
	"os.StartProcess": true, "syscall.Exec": true, "syscall.ForkExec": true, "syscall.StartProcess": true,
}

// TestNoShell proves that no code path of the generic actuator can run a
// process or a shell: its whole import graph (not only its own imports) is
// free of os/exec, of NATS and of every subject package, and no file in
// actuators/, tests included, imports os/exec or calls a process-starting
// function.
func TestNoShell(t *testing.T) {
	graph := importGraph(t, "github.com/operator-dev/operator/actuators", ".")
	for path, why := range forbiddenImports {
		if via, ok := graph[path]; ok {
			t.Errorf("actuators depends on %s (%s), imported by %s", path, why, via)
		}
	}
	if len(graph) < 20 {
		t.Fatalf("import graph has only %d packages; the walk is broken", len(graph))
	}
	noProcessInSource(t, ".")
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
