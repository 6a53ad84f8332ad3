package iptables

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/kproxy/kproxy/internal/flowtest"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestGolden renders every flow scenario and compares it with a golden
// file, for reviewing rule changes as diffs. Correctness is checked by
// TestFlowTable; refresh with "go test ./iptables -update".
func TestGolden(t *testing.T) {
	for _, sc := range flowtest.Scenarios() {
		t.Run(sc.Name, func(t *testing.T) {
			out, err := Render(sc.Snapshot(), flowOptions())
			if err != nil {
				t.Fatal(err)
			}
			compareGolden(t, sc.Name+".golden", out)
		})
	}
}

// compareGolden compares out with testdata/name, or rewrites it with -update.
func compareGolden(t *testing.T, name, out string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != out {
		t.Errorf("Render output differs from %s (run with -update and review the diff):\n%s", path, out)
	}
}
