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
