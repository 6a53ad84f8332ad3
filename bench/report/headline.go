package report

import (
	"fmt"
	"path/filepath"
	"strings"
)

// headlineStats are the rows of the README's summary table (label prefixes
// of metrics).
var headlineStats = []string{
	"first sync, fresh node", "first sync: full sync duration", "full sync on restart over",
	"partial sync, 1 Service", "partial sync: API update", "network programming p50",
	"network programming p99", "first packet via ClusterIP p50", "first packet via ClusterIP p99",
	"RSS at steady state", "CPU, process",
}

// headlineModes are the modes upstream and kproxy are compared in.
var headlineModes = []string{"iptables", "nftables"}

// Headline renders workload w of runs as the README's summary: per mode,
// upstream's and kproxy's medians (min–max) and kproxy's ratio.
func Headline(runs []*Results, w Workload) string {
	var b strings.Builder
	head := []string{"metric"}
	for _, mode := range headlineModes {
		head = append(head, "upstream "+mode, "kproxy "+mode, "ratio")
	}
	b.WriteString(tableLine(head))
	b.WriteString("|" + strings.Repeat("---|", len(head)) + "\n")
	for _, label := range headlineStats {
		m, ok := metricByLabel(label)
		if !ok {
			continue
		}
		cells := []string{strings.TrimRight(m.label, " ¹²³⁴⁵⁶⁷")}
		for _, mode := range headlineModes {
			cells = append(cells, headlineCells(runs, w, mode, m)...)
		}
		b.WriteString(tableLine(cells))
	}
	return b.String()
}

// headlineCells are upstream's and kproxy's figures in mode and their
// ratio, both from the last run that measured both, so that a ratio never
// mixes runs; either alone when only one was measured.
func headlineCells(runs []*Results, w Workload, mode string, m metric) []string {
	up, kp := "upstream-"+mode, "kproxy-"+mode
	if u, k, ok := lastPair(runs, w, up, w, kp, m); ok {
		return []string{u.Cell(m.prec), k.Cell(m.prec), "**" + Ratio(k, u) + "**"}
	}
	return []string{cellOr(runs, w, up, m), cellOr(runs, w, kp, m), "–"}
}

func cellOr(runs []*Results, w Workload, proxy string, m metric) string {
	st, ok := lastStat(runs, w, proxy, m)
	if !ok {
		return "–"
	}
	return st.Cell(m.prec)
}

// HeadlineWorkload is the largest N measured with the fewest endpoints per
// Service (10,000 × 2 in the workloads).
func HeadlineWorkload(runs []*Results) (Workload, bool) {
	ws := workloadsOf(runs)
	if len(ws) == 0 {
		return Workload{}, false
	}
	best := ws[0]
	for _, w := range ws {
		if w.M == best.M && w.N > best.N {
			best = w
		}
	}
	return best, true
}

// RunLine names a run for a README: its directory, start and commit.
func RunLine(r *Results, dir string) string {
	commit := r.Machine.Source.Commit
	if len(commit) > 12 {
		commit = commit[:12]
	}
	s := fmt.Sprintf("[%s](%s/results.md) (%s, commit %s", filepath.Base(dir), dir, r.Started.Format("2006-01-02"), commit)
	if r.Machine.Source.Uncommitted() {
		s += ", **uncommitted**"
	}
	return s + ")"
}
