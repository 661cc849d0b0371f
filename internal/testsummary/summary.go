package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
)

// A Result is one skipped or failed entry of a summary.
type Result struct {
	// Package is the import path; empty for a step outside go test.
	Package string
	// Test is the test name, subtests included; empty when the package
	// as a whole failed (a build failure, a failing TestMain).
	Test string
	// Detail is the skip reason, or what failed when it is not plain.
	Detail string
}

func (r Result) String() string {
	switch {
	case r.Test != "" && r.Detail != "":
		return r.Package + " " + r.Test + ": " + r.Detail
	case r.Test != "":
		return r.Package + " " + r.Test
	case r.Package != "":
		return r.Package + ": " + r.Detail
	default:
		return r.Detail
	}
}

// A Summary counts the tests of a run. Subtests count as tests, as they do
// in go test's own output. Failed also holds every package that failed
// without a failing test (it did not build, or its TestMain failed), so a
// run that failed never reports zero failures.
type Summary struct {
	Passed  int
	Failed  []Result
	Skipped []Result
}

// Write prints the skipped and failed entries and the count line, which is
// always the last line.
func (s Summary) Write(w io.Writer) error {
	var b strings.Builder
	section := func(title string, rs []Result) {
		if len(rs) == 0 {
			return
		}
		fmt.Fprintf(&b, "\n%s (%d):\n", title, len(rs))
		for _, r := range rs {
			b.WriteString("    " + strings.ReplaceAll(r.String(), "\n", "\n        ") + "\n")
		}
	}
	section("Skipped", s.Skipped)
	section("Failed", s.Failed)
	fmt.Fprintf(&b, "\n%d passed, %d failed, %d skipped\n", s.Passed, len(s.Failed), len(s.Skipped))
	_, err := io.WriteString(w, b.String())
	return err
}

// testEvent is one line of go test -json: a test2json TestEvent, or a build
// event (build-output, build-fail) keyed by ImportPath.
type testEvent struct {
	Action      string
	Package     string
	Test        string
	Output      string
	FailedBuild string
	ImportPath  string
}

// Summarize reads go test -json from r, writes the usual go test output to w
// as each package finishes, and returns the counts. Lines that are not JSON
// are copied to w as they come. A package whose end is missing from the
// input (the run was cut short) has its running tests counted as failed.
func Summarize(r io.Reader, w io.Writer) (Summary, error) {
	c := &collector{w: bufio.NewWriter(w), pkgs: map[string]*pkgRun{}}
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			c.line(line)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			c.flushAll()
			return c.summary(), fmt.Errorf("read test output: %w", err)
		}
	}
	c.flushAll()
	if err := c.w.Flush(); err != nil {
		return c.summary(), fmt.Errorf("write test output: %w", err)
	}
	return c.summary(), nil
}

type collector struct {
	w       *bufio.Writer
	pkgs    map[string]*pkgRun
	order   []string // packages in the order they started
	passed  int
	failed  []Result
	skipped []Result
}

// pkgRun is the state of one package's test binary.
type pkgRun struct {
	running  map[string]*testRun
	seq      int
	failures []*testRun // failed tests, printed when the package ends
	failedN  int
	output   strings.Builder // output outside any test
	done     bool
}

type testRun struct {
	name   string
	seq    int // start order, so a parent prints before its subtests
	output strings.Builder
}

func (c *collector) line(b []byte) {
	var e testEvent
	if trimmed := bytes.TrimSpace(b); len(trimmed) == 0 || trimmed[0] != '{' || json.Unmarshal(trimmed, &e) != nil {
		c.w.Write(b)
		return
	}
	switch e.Action {
	case "build-output":
		c.w.WriteString(e.Output)
		return
	case "build-fail":
		return
	}
	if e.Package == "" {
		return
	}
	p := c.pkg(e.Package)
	if e.Test == "" {
		switch e.Action {
		case "output":
			p.output.WriteString(e.Output)
		case "pass", "skip":
			c.endPackage(e.Package, p, false, "")
		case "fail":
			detail := "failed outside any test (see its output above)"
			if e.FailedBuild != "" {
				detail = "build failed"
			}
			c.endPackage(e.Package, p, true, detail)
		}
		return
	}
	switch e.Action {
	case "run":
		p.seq++
		p.running[e.Test] = &testRun{name: e.Test, seq: p.seq}
	case "output":
		if t, ok := p.running[e.Test]; ok {
			t.output.WriteString(e.Output)
		} else {
			p.output.WriteString(e.Output)
		}
	case "pass":
		delete(p.running, e.Test)
		c.passed++
	case "skip":
		t := p.end(e.Test)
		c.skipped = append(c.skipped, Result{Package: e.Package, Test: e.Test, Detail: skipReason(t.output.String())})
	case "fail":
		t := p.end(e.Test)
		p.failures = append(p.failures, t)
		p.failedN++
		c.failed = append(c.failed, Result{Package: e.Package, Test: e.Test})
	}
}

func (c *collector) pkg(name string) *pkgRun {
	p, ok := c.pkgs[name]
	if !ok || p.done {
		// A package seen again after its end is a second run (-count,
		// or two go test runs in one stream).
		p = &pkgRun{running: map[string]*testRun{}}
		if !ok {
			c.order = append(c.order, name)
		}
		c.pkgs[name] = p
	}
	return p
}

// end removes a test from the running ones and returns it; a test whose
// run event was not seen has no output.
func (p *pkgRun) end(name string) *testRun {
	t, ok := p.running[name]
	if !ok {
		p.seq++
		return &testRun{name: name, seq: p.seq}
	}
	delete(p.running, name)
	return t
}

// endPackage prints what go test prints for a finished package: the output
// of its failed tests and its FAIL lines when it failed, its ok or ? line
// when it passed. Tests still running when the package ended never
// finished (a timeout panic, os.Exit) and count as failed.
func (c *collector) endPackage(name string, p *pkgRun, failed bool, detail string) {
	p.done = true
	unfinished := make([]*testRun, 0, len(p.running))
	for _, t := range p.running {
		unfinished = append(unfinished, t)
	}
	sort.Slice(unfinished, func(i, j int) bool { return unfinished[i].seq < unfinished[j].seq })
	for _, t := range unfinished {
		t.output.WriteString("--- FAIL: " + t.name + " (did not finish)\n")
		p.failures = append(p.failures, t)
		p.failedN++
		c.failed = append(c.failed, Result{Package: name, Test: t.name, Detail: "did not finish"})
	}
	p.running = nil
	sort.SliceStable(p.failures, func(i, j int) bool { return p.failures[i].seq < p.failures[j].seq })
	for _, t := range p.failures {
		c.w.WriteString(failureBlock(t))
	}
	if failed || p.failedN > 0 {
		c.w.WriteString(p.output.String())
		if p.failedN == 0 {
			c.failed = append(c.failed, Result{Package: name, Detail: detail})
		}
	} else {
		for _, l := range lines(p.output.String()) {
			if strings.HasPrefix(l, "ok ") || strings.HasPrefix(l, "? ") {
				c.w.WriteString(l + "\n")
			}
		}
	}
	_ = c.w.Flush()
}

// flushAll ends the packages whose end never came.
func (c *collector) flushAll() {
	for _, name := range c.order {
		if p := c.pkgs[name]; !p.done {
			p.output.WriteString("FAIL\t" + name + " (no result: the run was cut short)\n")
			c.endPackage(name, p, true, "no result: the run was cut short")
		}
	}
}

func (c *collector) summary() Summary {
	s := Summary{Passed: c.passed, Failed: c.failed, Skipped: c.skipped}
	byPackage := func(rs []Result) func(i, j int) bool {
		return func(i, j int) bool { return rs[i].Package < rs[j].Package }
	}
	sort.SliceStable(s.Failed, byPackage(s.Failed))
	sort.SliceStable(s.Skipped, byPackage(s.Skipped))
	return s
}

// failureBlock is a failed test's own output without the === framing
// lines, its --- FAIL line first, indented by its subtest depth.
func failureBlock(t *testRun) string {
	var head, body []string
	for _, l := range lines(t.output.String()) {
		switch {
		case strings.HasPrefix(l, "=== "):
		case strings.HasPrefix(l, "--- FAIL: ") && head == nil:
			head = append(head, l)
		default:
			body = append(body, l)
		}
	}
	indent := strings.Repeat("    ", strings.Count(t.name, "/"))
	var b strings.Builder
	for _, l := range append(head, body...) {
		b.WriteString(indent + l + "\n")
	}
	return b.String()
}

// logLine matches the start of a t.Log, t.Error or t.Skip message as
// test2json reports it: "    file_test.go:12: text".
var logLine = regexp.MustCompile(`^\s+[^\s:]+\.go:\d+: `)

// skipReason is the last message a skipped test logged (the one t.Skip
// wrote), with its continuation lines, without the === and --- framing.
func skipReason(output string) string {
	var msg []string
	for _, l := range lines(output) {
		switch {
		case strings.HasPrefix(l, "=== "), strings.HasPrefix(l, "--- "):
		case logLine.MatchString(l):
			msg = []string{strings.TrimSpace(l)}
		case strings.TrimSpace(l) != "":
			msg = append(msg, strings.TrimSpace(l))
		}
	}
	if len(msg) == 0 {
		return "no reason given"
	}
	return strings.Join(msg, "\n")
}

func lines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
