package report

import (
	"fmt"
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
			up, upOK := lastStat(runs, w, "upstream-"+mode, m)
			kp, kpOK := lastStat(runs, w, "kproxy-"+mode, m)
			cells = append(cells, cellOr(up, upOK, m.prec), cellOr(kp, kpOK, m.prec), "–")
			if upOK && kpOK {
				cells[len(cells)-1] = "**" + Ratio(kp, up) + "**"
			}
		}
		b.WriteString(tableLine(cells))
	}
	return b.String()
}

func cellOr(st Stat, ok bool, prec int) string {
	if !ok {
		return "–"
	}
	return st.Cell(prec)
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
	s := fmt.Sprintf("[%s](%s/results.md) (%s, commit %s", pathBase(dir), dir, r.Started.Format("2006-01-02"), commit)
	if r.Machine.Source.Uncommitted() {
		s += ", **uncommitted**"
	}
	return s + ")"
}

func pathBase(p string) string {
	if i := strings.LastIndex(strings.TrimSuffix(p, "/"), "/"); i >= 0 {
		return p[i+1:]
	}
	return p
}
