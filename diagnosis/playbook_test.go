package diagnosis

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/operator-dev/operator/actuators"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func testCatalog(t *testing.T) *actuators.Catalog {
	t.Helper()
	data, err := os.ReadFile("testdata/catalog.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cat, err := actuators.ParseCatalog("testdata/catalog.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

func testPlaybook(t *testing.T) *Playbook {
	t.Helper()
	data, err := os.ReadFile("testdata/playbook.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pb, err := ParsePlaybook("testdata/playbook.yaml", data, testCatalog(t))
	if err != nil {
		t.Fatal(err)
	}
	return pb
}

func TestParsePlaybook(t *testing.T) {
	pb := testPlaybook(t)
	if pb.Subject != "toy" || len(pb.Evidence) != 5 || len(pb.Hypotheses) != 3 {
		t.Fatalf("parsed %s with %d sources and %d hypotheses", pb.Subject, len(pb.Evidence), len(pb.Hypotheses))
	}
	recent := pb.Evidence[0]
	if recent.Kind != SourceObservations || recent.Last != 3 || recent.Within != DefaultWithin || recent.Timeout != DefaultSourceTimeout {
		t.Errorf("observations source %+v", recent)
	}
	if a := pb.Evidence[2]; a.Within.String() != "5m0s" {
		t.Errorf("actions within %s", a.Within)
	}
	h := pb.Hypotheses[0]
	if h.ID != "consumers_gone" || len(h.Signals) != 2 || h.Suggest == nil || h.Suggest.Action != "drain" {
		t.Errorf("hypothesis %+v", h)
	}
	for _, tt := range []struct {
		rule string
		want bool
	}{{"queue_deep", true}, {"observer_stale", true}, {"disk_full", false}} {
		if got := pb.Considers(tt.rule); got != tt.want {
			t.Errorf("Considers(%s) = %v", tt.rule, got)
		}
	}
}

// TestBadPlaybooks: each broken playbook is refused with every problem,
// each with file and line, as the golden file beside it says.
func TestBadPlaybooks(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil || len(files) < 6 {
		t.Fatalf("fixtures: %v, %d", err, len(files))
	}
	cat := testCatalog(t)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			pb, err := ParsePlaybook(f, data, cat)
			if err == nil {
				t.Fatalf("accepted: %+v", pb)
			}
			got := err.Error() + "\n"
			for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
				if !strings.HasPrefix(line, f+":") {
					t.Errorf("problem without file and line: %q", line)
				}
			}
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./diagnosis -run TestBadPlaybooks -update)", err)
			}
			if got != string(want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}
