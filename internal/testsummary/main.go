// Command testsummary reads the output of go test -json and prints what a
// person needs from a long test run: the usual per-package ok and FAIL lines
// and the output of failing tests as each package finishes, then every
// skipped test with its reason, every failure, and a last line
// "N passed, N failed, N skipped". A plain go test run hides skips, so a
// test that skipped for lack of a tool looks the same as one that passed.
//
// Usage:
//
//	go test -json ./... | testsummary
//	testsummary [-fail LABEL]... [--] go test -json ./...
//
// Given a command, testsummary runs it and reads its standard output, so a
// command that fails without reporting a failed test (a bad flag, a missing
// package) still counts as a failure. -fail lists a step that failed before
// the tests, such as go vet, among the failures. The exit status is 1 when
// anything failed, 2 on a usage error.
//
// It is a development tool: nothing in Operator imports it.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
)

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

// labels is a repeatable string flag.
type labels []string

func (l *labels) String() string     { return strings.Join(*l, ", ") }
func (l *labels) Set(v string) error { *l = append(*l, v); return nil }

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("testsummary", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var failed labels
	fs.Var(&failed, "fail", "list `step` as failed (repeatable), e.g. -fail 'go vet ./...'")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: go test -json ... | testsummary [-fail step]...")
		fmt.Fprintln(stderr, "       testsummary [-fail step]... [--] go test -json ...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var (
		sum Summary
		err error
	)
	if fs.NArg() == 0 {
		sum, err = Summarize(stdin, stdout)
	} else {
		sum, err = summarizeCommand(fs.Args(), stdout, stderr)
	}
	if err != nil {
		sum.Failed = append(sum.Failed, Result{Detail: err.Error()})
	}
	for _, f := range failed {
		sum.Failed = append(sum.Failed, Result{Detail: f + " failed (see its output above)"})
	}
	if err := sum.Write(stdout); err != nil {
		fmt.Fprintf(stderr, "testsummary: %v\n", err)
		return 1
	}
	if len(sum.Failed) > 0 {
		return 1
	}
	return 0
}

// summarizeCommand runs argv and summarizes its standard output. A non-zero
// exit that the output does not explain with a failure becomes one.
func summarizeCommand(argv []string, stdout, stderr io.Writer) (Summary, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = os.Stdin
	cmd.Stderr = stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return Summary{}, fmt.Errorf("run %s: %w", argv[0], err)
	}
	if err := cmd.Start(); err != nil {
		return Summary{}, fmt.Errorf("run %s: %w", argv[0], err)
	}
	// An interrupt from the terminal reaches the command too; outlive it
	// so the summary of what ran is still printed.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	defer signal.Stop(sig)

	sum, readErr := Summarize(pipe, stdout)
	if readErr != nil {
		_, _ = io.Copy(io.Discard, pipe)
	}
	waitErr := cmd.Wait()
	if readErr != nil {
		return sum, readErr
	}
	var exit *exec.ExitError
	if errors.As(waitErr, &exit) && len(sum.Failed) == 0 {
		return sum, fmt.Errorf("%s: %v (see its errors above)", strings.Join(argv, " "), exit)
	}
	if waitErr != nil && !errors.As(waitErr, &exit) {
		return sum, fmt.Errorf("run %s: %w", argv[0], waitErr)
	}
	return sum, nil
}
