package iptables

import (
	"flag"
	"testing"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/internal/golden"
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
func compareGolden(t *testing.T, name, out string) { golden.Compare(t, name, out, *update) }
