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

// UpdateReadme replaces the part of readme between the markers with the
// results' tables and links to the plots in dir.
func UpdateReadme(readme string, res *report.Results, dir string) error {
	b, err := os.ReadFile(readme)
	if err != nil {
		return fmt.Errorf("update readme: %w", err)
	}
	text := string(b)
	i, j := strings.Index(text, readmeBegin), strings.Index(text, readmeEnd)
	if i < 0 || j < i {
		return fmt.Errorf("update readme: %s has no %s ... %s section", readme, readmeBegin, readmeEnd)
	}
	rel, err := filepath.Rel(filepath.Dir(readme), dir)
	if err != nil {
		rel = dir
	}
	var s strings.Builder
	s.WriteString(readmeBegin + "\n")
	fmt.Fprintf(&s, "Latest run: [%s](%s/results.md), %s ([machine](%s/machine.md)); `%s`.\n\n",
		filepath.Base(dir), rel, res.Started.Format("2006-01-02"), rel, res.Command)
	for _, w := range res.Workloads() {
		s.WriteString(res.Table(w))
		s.WriteString("\n")
	}
	s.WriteString(report.Footnotes + "\n")
	for _, f := range report.PlotFiles() {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			fmt.Fprintf(&s, "![%s](%s/%s)\n", strings.TrimSuffix(f, ".png"), rel, f)
		}
	}
	text = text[:i] + s.String() + text[j:]
	return os.WriteFile(readme, []byte(text), 0o644)
}
