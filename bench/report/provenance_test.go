package report

import (
	"strings"
	"testing"
)

// TestUncommittedMarked checks that a run from a dirty tree (or one whose
// source is unknown) says so in every table and in machine.md, and a clean
// one records its commit.
func TestUncommittedMarked(t *testing.T) {
	for _, src := range []Provenance{{Commit: "abc123"}, {}} {
		r := sampleResults()
		r.Machine.Source = src
		for _, w := range r.Workloads() {
			if !strings.Contains(r.Table(w), "**uncommitted**") {
				t.Errorf("%+v: table %v not marked uncommitted", src, w)
			}
		}
		if md := r.Machine.Markdown(); !strings.Contains(md, "**uncommitted**") {
			t.Errorf("%+v: machine.md not marked uncommitted:\n%s", src, md)
		}
	}
	r := sampleResults()
	if strings.Contains(r.Markdown(), "uncommitted") {
		t.Error("a clean run is marked uncommitted")
	}
	if md := r.Machine.Markdown(); !strings.Contains(md, "abc123 (clean tree)") {
		t.Errorf("machine.md lacks the commit:\n%s", md)
	}
}
