package kind

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kproxy/kproxy/internal/mdsection"
)

var updateReadme = flag.Bool("kind.update-readme", false, "rewrite the README sections generated from bench/results (kind-scale, kind-up)")

// TestScaleReadmeIsCurrent keeps the README's kind figures generated: its
// kind-scale section must be exactly the summary of the newest scale run
// (go test ./e2e/kind -run ScaleReadme -kind.update-readme rewrites it).
func TestScaleReadmeIsCurrent(t *testing.T) {
	root, _ := filepath.Abs("../..")
	dir, rows, err := latestScaleRun(root)
	if err != nil {
		t.Fatal(err)
	}
	rel, _ := filepath.Rel(root, dir)
	checkGeneratedSection(t, root, readmeSection, scaleSummary(rows, rel))
}

// checkGeneratedSection fails unless README's section is exactly want;
// with -kind.update-readme it rewrites the section first.
func checkGeneratedSection(t *testing.T, root, section, want string) {
	t.Helper()
	readme := filepath.Join(root, "README.md")
	if *updateReadme {
		if err := mdsection.ReplaceInFile(readme, section, want); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	got, err := mdsection.Get(string(b), section)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("README's %s section is not generated from bench/results; rerun with -kind.update-readme:\n%s", section, want)
	}
}

func TestScaleSummaryMediansAndRatios(t *testing.T) {
	rows := []scaleRow{
		{Proxy: "kproxy", Node: "a", Services: 10, ProgP50: 1, RSSMiB: 50, Commit: "abc", MeasuredAtDate: "2026-01-02T03:04:05Z"},
		{Proxy: "kproxy", Node: "b", ProgP50: 3, RSSMiB: 70},
		{Proxy: "kproxy", Node: "c", ProgP50: 2, RSSMiB: 60},
		{Proxy: "kube-proxy", Node: "a", ProgP50: 4, RSSMiB: 100},
		{Proxy: "kube-proxy", Node: "b", ProgP50: 4, RSSMiB: 120},
	}
	s := scaleSummary(rows, "bench/results/x")
	for _, want := range []string{
		"| network programming p50 (s) | 2.00 | 4.00 | 0.50× |",
		"| RSS after the run (MiB) | 60 | 110 | 0.55× |",
		"| sync p50 (s) | 0.000 | 0.000 | – |",
		"10 Services × 2 endpoints", "commit abc, 2026-01-02", "(bench/results/x/results.md)",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
}
