package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kproxy/kproxy/bench/report"
)

// README markers between which UpdateReadme writes the latest results.
const (
	readmeBegin = "<!-- results:begin -->"
	readmeEnd   = "<!-- results:end -->"
)

// RunDir is one benchmark run's results and the directory they are in.
type RunDir struct {
	Results *report.Results
	Dir     string
}

// UpdateReadme replaces the part of readme between the markers with the
// runs' tables and links to their plots.
func UpdateReadme(readme string, runs ...RunDir) error {
	b, err := os.ReadFile(readme)
	if err != nil {
		return fmt.Errorf("update readme: %w", err)
	}
	text := string(b)
	i, j := strings.Index(text, readmeBegin), strings.Index(text, readmeEnd)
	if i < 0 || j < i {
		return fmt.Errorf("update readme: %s has no %s ... %s section", readme, readmeBegin, readmeEnd)
	}
	var s strings.Builder
	s.WriteString(readmeBegin + "\n")
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
	text = text[:i] + s.String() + text[j:]
	return os.WriteFile(readme, []byte(text), 0o644)
}
