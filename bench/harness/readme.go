package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kproxy/kproxy/bench/report"
	"github.com/kproxy/kproxy/internal/mdsection"
)

// readmeSection names the README section UpdateReadme writes the latest
// results to.
const readmeSection = "results"

// RunDir is one benchmark run's results and the directory they are in.
type RunDir struct {
	Results *report.Results
	Dir     string
}

// UpdateReadme replaces the part of readme between the markers with the
// runs' tables and links to their plots.
func UpdateReadme(readme string, runs ...RunDir) error {
	var s strings.Builder
	for _, run := range runs {
		res := run.Results
		rel := run.Dir
		if abs, err := filepath.Abs(run.Dir); err == nil {
			if absReadme, err := filepath.Abs(readme); err == nil {
				if r, err := filepath.Rel(filepath.Dir(absReadme), abs); err == nil {
					rel = r
				}
			}
		}
		fmt.Fprintf(&s, "Run [%s](%s/results.md), %s ([machine](%s/machine.md)): `%s`\n\n",
			filepath.Base(run.Dir), rel, res.Started.Format("2006-01-02 15:04 MST"), rel, res.Command)
		for _, w := range res.Workloads() {
			s.WriteString(res.Table(w))
			s.WriteString("\n")
		}
		for _, f := range report.PlotFiles() {
			if _, err := os.Stat(filepath.Join(run.Dir, f)); err == nil {
				fmt.Fprintf(&s, "![%s](%s/%s)\n", strings.TrimSuffix(f, ".png"), rel, f)
			}
		}
		s.WriteString("\n")
	}
	s.WriteString(report.Footnotes)
	if err := mdsection.ReplaceInFile(readme, readmeSection, s.String()); err != nil {
		return fmt.Errorf("update readme: %w", err)
	}
	return nil
}
