package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The testdata files are go test -json output recorded from a throwaway
// module whose tests pass, skip, fail, panic, time out, exit, fail in
// TestMain or do not build; cut-short.jsonl is a run interrupted mid-way and
// not-json.jsonl mixes in lines that are not test events.
func TestSummarize(t *testing.T) {
	const redisReason = `skip_test.go:6: redis-server not found in PATH: exec: "redis-server": executable file not found in $PATH`
	tests := []struct {
		file       string
		passed     int
		failed     []string
		skipped    []string
		wantOut    []string // in this order in the streamed output
		wantNotOut []string
	}{
		{
			file:   "mixed.jsonl",
			passed: 9,
			failed: []string{
				"example.com/fake/broken: build failed",
				"example.com/fake/fail TestBroken/bad",
				"example.com/fake/fail TestBroken",
				"example.com/fake/fail TestFatal",
				"example.com/fake/panics TestPanics",
			},
			skipped: []string{
				"example.com/fake/skip TestNeedsRedis: " + redisReason,
				"example.com/fake/skip TestShort/slow: skip_test.go:13: slow: skipped in -short mode",
				"example.com/fake/skip TestNoReason: no reason given",
			},
			wantOut: []string{
				"broken/broken_test.go:5:28: undefined: undefinedThing\n",
				"FAIL\texample.com/fake/broken [build failed]\n",
				"--- FAIL: TestBroken (0.00s)\n    --- FAIL: TestBroken/bad (0.00s)\n        fail_test.go:10: got 1, want 2\n",
				"--- FAIL: TestFatal (0.00s)\n    fail_test.go:15: cannot connect: connection refused\n",
				"FAIL\texample.com/fake/fail\t0.002s\n",
				"?   \texample.com/fake/notests\t[no test files]\n",
				"--- FAIL: TestPanics (0.00s)\npanic: assignment to entry in nil map",
				"FAIL\texample.com/fake/panics\t0.010s\n",
				"ok  \texample.com/fake/pass\t0.005s\n",
				"ok  \texample.com/fake/skip\t0.002s\n",
			},
			wantNotOut: []string{"=== RUN", "a line of log", "--- PASS", "--- SKIP", "preparing"},
		},
		{
			file:   "unfinished.jsonl",
			passed: 2,
			failed: []string{
				"example.com/fake/osexit TestExits: did not finish",
				"example.com/fake/timeout TestHangs: did not finish",
			},
			wantOut: []string{
				"--- FAIL: TestHangs (did not finish)\n    timeout_test.go:11: waiting for the server\npanic: test timed out after 2s\n",
				"FAIL\texample.com/fake/timeout\t2.007s\n",
				"--- FAIL: TestExits (did not finish)\n    osexit_test.go:11: about to exit\n",
				"FAIL\texample.com/fake/osexit\t0.002s\n",
			},
		},
		{
			file:    "testmain.jsonl",
			passed:  1,
			failed:  []string{"example.com/fake/testmain: failed outside any test (see its output above)"},
			wantOut: []string{"leaked goroutines found after the tests\nFAIL\texample.com/fake/testmain\t0.002s\n"},
		},
		{
			file: "cut-short.jsonl",
			failed: []string{
				"example.com/fake/pass TestAdd: did not finish",
				"example.com/fake/pass TestAdd/small: did not finish",
				"example.com/fake/pass TestAdd/zero: did not finish",
			},
			wantOut: []string{"FAIL\texample.com/fake/pass (no result: the run was cut short)\n"},
		},
		{
			file:    "count2.jsonl",
			passed:  6,
			skipped: []string{"example.com/fake/skip TestNeedsRedis: " + redisReason, "example.com/fake/skip TestNeedsRedis: " + redisReason},
			wantOut: []string{"ok  \texample.com/fake/skip\t0.004s\n", "ok  \texample.com/fake/pass\t0.002s\n"},
		},
		{
			file:       "no-tests-to-run.jsonl",
			wantOut:    []string{"ok  \texample.com/fake/pass\t0.002s [no tests to run]\n"},
			wantNotOut: []string{"warning"},
		},
		{
			file:    "not-json.jsonl",
			passed:  1,
			wantOut: []string{"go: downloading example.com/dep v1.0.0\n", "{not json at all\n", "ok  \texample.com/fake/pass\t0.002s\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			sum, err := Summarize(bytes.NewReader(in), &out)
			if err != nil {
				t.Fatal(err)
			}
			if sum.Passed != tt.passed {
				t.Errorf("passed = %d, want %d", sum.Passed, tt.passed)
			}
			sameResults(t, "failed", sum.Failed, tt.failed)
			sameResults(t, "skipped", sum.Skipped, tt.skipped)
			rest := out.String()
			for _, w := range tt.wantOut {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Errorf("output lacks %q after the previous match; output:\n%s", w, out.String())
					break
				}
				rest = rest[i+len(w):]
			}
			for _, w := range tt.wantNotOut {
				if strings.Contains(out.String(), w) {
					t.Errorf("output has %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func sameResults(t *testing.T, what string, got []Result, want []string) {
	t.Helper()
	g := make([]string, len(got))
	for i, r := range got {
		g[i] = r.String()
	}
	if strings.Join(g, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got %q\nwant %q", what, g, want)
	}
}

func TestSummaryWrite(t *testing.T) {
	tests := []struct {
		name string
		sum  Summary
		want string
	}{
		{
			name: "nothing ran",
			want: "\n0 passed, 0 failed, 0 skipped\n",
		},
		{
			name: "skips and failures",
			sum: Summary{
				Passed:  3,
				Skipped: []Result{{Package: "p", Test: "TestA", Detail: "a.go:1: no redis\nsecond line"}},
				Failed:  []Result{{Package: "p", Test: "TestB"}, {Package: "q", Detail: "build failed"}, {Detail: "go vet failed"}},
			},
			want: "\nSkipped (1):\n    p TestA: a.go:1: no redis\n        second line\n" +
				"\nFailed (3):\n    p TestB\n    q: build failed\n    go vet failed\n" +
				"\n3 passed, 3 failed, 1 skipped\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tt.sum.Write(&b); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", b.String(), tt.want)
			}
		})
	}
}

// TestRun checks the exit status and the last line, reading standard input
// or running a command.
func TestRun(t *testing.T) {
	mixed := filepath.Join("testdata", "mixed.jsonl")
	passing := filepath.Join("testdata", "count2.jsonl")
	tests := []struct {
		name     string
		args     []string
		stdin    string // file fed on standard input
		wantCode int
		wantLast string
		wantOut  string
	}{
		{name: "stdin, failures", stdin: mixed, wantCode: 1, wantLast: "9 passed, 5 failed, 3 skipped"},
		{name: "stdin, all pass", stdin: passing, wantCode: 0, wantLast: "6 passed, 0 failed, 2 skipped"},
		{name: "a failed step fails a passing run", args: []string{"-fail", "go vet ./..."}, stdin: passing,
			wantCode: 1, wantLast: "6 passed, 1 failed, 2 skipped", wantOut: "    go vet ./... failed (see its output above)\n"},
		{name: "command", args: []string{"--", "cat", passing}, wantCode: 0, wantLast: "6 passed, 0 failed, 2 skipped"},
		{name: "command failing without a failed test", args: []string{"sh", "-c", "cat " + passing + "; exit 2"},
			wantCode: 1, wantLast: "6 passed, 1 failed, 2 skipped", wantOut: "exit status 2 (see its errors above)"},
		{name: "command that cannot start", args: []string{"./no-such-command"}, wantCode: 1, wantLast: "0 passed, 1 failed, 0 skipped"},
		{name: "bad flag", args: []string{"-nope"}, wantCode: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdin bytes.Reader
			if tt.stdin != "" {
				b, err := os.ReadFile(tt.stdin)
				if err != nil {
					t.Fatal(err)
				}
				stdin.Reset(b)
			}
			var stdout, stderr bytes.Buffer
			code := run(tt.args, &stdin, &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("exit status %d, want %d; stderr: %s", code, tt.wantCode, stderr.String())
			}
			if tt.wantLast != "" {
				out := strings.TrimSuffix(stdout.String(), "\n")
				if last := out[strings.LastIndex(out, "\n")+1:]; last != tt.wantLast {
					t.Errorf("last line %q, want %q", last, tt.wantLast)
				}
			}
			if !strings.Contains(stdout.String(), tt.wantOut) {
				t.Errorf("output lacks %q:\n%s", tt.wantOut, stdout.String())
			}
		})
	}
}
