package evaluators

import (
	"bytes"
	"testing"
)

func TestRunTestsExample(t *testing.T) {
	var out bytes.Buffer
	ok, err := RunTests(ctxT(t), &out, LoadOptions{}, "testdata/rules_test.yaml")
	if err != nil || !ok {
		t.Fatalf("ok=%v err=%v\n%s", ok, err, out.String())
	}
	t.Log(out.String())
}

func TestRunTestsReportsFailures(t *testing.T) {
	var out bytes.Buffer
	ok, err := RunTests(ctxT(t), &out, LoadOptions{}, "testdata/failing_rules_test.yaml")
	if ok || err != nil {
		t.Fatalf("ok=%v err=%v, want a failed run without a file error", ok, err)
	}
	golden(t, "failing_rules_test.golden", out.Bytes())
}

func TestRunTestsFileErrors(t *testing.T) {
	var out bytes.Buffer
	ok, err := RunTests(ctxT(t), &out, LoadOptions{}, "testdata/nosuch_test.yaml", "testdata/bad-cel.yaml")
	if ok || err == nil {
		t.Fatalf("ok=%v err=%v", ok, err)
	}
	for _, want := range []string{"nosuch_test.yaml", `unknown field "rules", "state_schema", "subject"`} {
		if !bytes.Contains(out.Bytes(), []byte(want)) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
