package report

import (
	"fmt"
	"strings"
)

// Goal is a target the issues set for one kproxy mode, checked against the
// medians of the runs: Proxy's figure divided by Base's (or, with no Base,
// the figure itself) must be at most Max on every workload Where accepts.
type Goal struct {
	Text  string // the goal as stated
	Proxy string
	Base  string // "" for a bound on the figure itself, SmallestN for flatness in N
	Stat  string // label prefix of the metric (see metricByLabel)
	Max   float64
	Where func(Workload) bool
}

// SmallestN as a Goal's Base divides by the same proxy's figure on the
// workload with the same M and the smallest N: the goal is flatness in N.
const SmallestN = "same proxy at the smallest N"

// MinSyncPeriod is the proxies' min-sync-period in the bench (seconds).
const MinSyncPeriod = 1.0

func every(Workload) bool             { return true }
func at(n, m int) func(Workload) bool { return func(w Workload) bool { return w.N == n && w.M == m } }

// Goals are the targets of the benchmark issues, in the order the README
// lists them.
var Goals = []Goal{
	{"first full sync ≤ 1.5× the floor", "kproxy-iptables", "floor", "first sync: full sync duration", 1.5, every},
	{"one changed Service ≤ 0.05× upstream's partial sync", "kproxy-iptables", "upstream-iptables", "partial sync, 1 Service", 0.05, at(10000, 2)},
	{"…or ≤ 1.2× a bare restore of the same delta", "kproxy-iptables", "floor", "partial sync, 1 Service", 1.2, at(10000, 2)},
	{"RSS ≤ 0.5× upstream", "kproxy-iptables", "upstream-iptables", "RSS at steady state", 0.5, every},
	{"network programming p50 ≤ min-sync-period + 100 ms", "kproxy-iptables", "", "network programming p50", MinSyncPeriod + 0.1, at(10000, 2)},
	{"first full sync ≤ 1.5× the floor", "kproxy-nftables", "nft-floor", "first sync: full sync duration", 1.5, every},
	{"first full sync ≤ 0.05× upstream", "kproxy-nftables", "upstream-nftables", "first sync: full sync duration", 0.05, at(5000, 50)},
	{"one changed Service ≤ 0.1× upstream's partial sync", "kproxy-nftables", "upstream-nftables", "partial sync, 1 Service", 0.1, every},
	{"one changed Service within 2× of a bare nft -f of the delta", "kproxy-nftables", "nft-floor", "partial sync, 1 Service", 2, every},
	{"cold start to first sync done ≤ 0.1× upstream", "kproxy-nftables", "upstream-nftables", "first sync, fresh node", 0.1, every},
	{"RSS ≤ 0.5× upstream", "kproxy-nftables", "upstream-nftables", "RSS at steady state", 0.5, every},
	{"first packet p50 no worse than upstream", "kproxy-nftables", "upstream-nftables", "first packet via ClusterIP p50", 1, every},
	{"first packet p50 flat in N (within 20% of the smallest N's)", "kproxy-nftables", SmallestN, "first packet via ClusterIP p50", 1.2, every},
	{"network programming p50 ≤ min-sync-period + 100 ms", "kproxy-nftables", "", "network programming p50", MinSyncPeriod + 0.1, at(10000, 2)},
}

// metricByLabel returns the table metric whose label starts with prefix.
func metricByLabel(prefix string) (metric, bool) {
	for _, m := range metrics {
		if strings.HasPrefix(m.label, prefix) {
			return m, true
		}
	}
	return metric{}, false
}

// GoalFinding is one goal on one workload.
type GoalFinding struct {
	Goal     Goal
	Workload Workload
	Measured string // the figure or ratio, with what it divides
	Met      string // "yes", "no" or "not measured"
}

// CheckGoals evaluates goals on every workload of runs that a goal applies
// to; a workload measured in several runs is taken from the last of them.
func CheckGoals(goals []Goal, runs []*Results) []GoalFinding {
	var out []GoalFinding
	for _, g := range goals {
		for _, w := range workloadsOf(runs) {
			flatness := g.Base == SmallestN
			if g.Where(w) && !(flatness && smallestN(runs, w) == w) {
				out = append(out, checkGoal(g, w, runs))
			}
		}
	}
	return out
}

func checkGoal(g Goal, w Workload, runs []*Results) GoalFinding {
	f := GoalFinding{Goal: g, Workload: w, Measured: "–", Met: "not measured"}
	m, ok := metricByLabel(g.Stat)
	if !ok {
		f.Measured = "no metric " + g.Stat
		return f
	}
	a, aok := lastStat(runs, w, g.Proxy, m)
	if !aok {
		return f
	}
	if g.Base == "" {
		f.Measured = a.Cell(m.prec)
		f.Met = verdict(a.Median, g.Max)
		return f
	}
	bw, base := w, g.Base
	if base == SmallestN {
		bw, base = smallestN(runs, w), g.Proxy
	}
	b, bok := lastStat(runs, bw, base, m)
	if !bok {
		return f
	}
	f.Measured = fmt.Sprintf("%s (%s / %s)", Ratio(a, b), a.value(a.Median, m.prec), b.value(b.Median, m.prec))
	switch {
	case over(a.Median):
		f.Met = "no"
	case over(b.Median):
		f.Met = verdict(a.Median/F(b.Over), g.Max) // the ratio is below this bound
	default:
		f.Met = verdict(a.Median/b.Median, g.Max)
	}
	return f
}

func verdict(v F, max float64) string {
	switch {
	case !v.Valid():
		return "not measured"
	case float64(v) <= max:
		return "yes"
	}
	return "no"
}

// lastStat is proxy's figure on w from the last run that measured it.
func lastStat(runs []*Results, w Workload, proxy string, m metric) (Stat, bool) {
	for i := len(runs) - 1; i >= 0; i-- {
		for _, g := range runs[i].GroupsOf(w) {
			if g.Proxy != proxy {
				continue
			}
			if st := g.Stat(m); st.Samples > 0 {
				return st, true
			}
		}
	}
	return Stat{}, false
}

// smallestN is the workload of runs with w's M and the smallest N.
func smallestN(runs []*Results, w Workload) Workload {
	for _, c := range workloadsOf(runs) { // by M, then N
		if c.M == w.M {
			return c
		}
	}
	return w
}

// workloadsOf is every workload of runs, by M then N.
func workloadsOf(runs []*Results) []Workload {
	all := &Results{}
	for _, r := range runs {
		all.Rows = append(all.Rows, r.Rows...)
	}
	return all.Workloads()
}

// GoalTable renders findings as a Markdown table.
func GoalTable(findings []GoalFinding) string {
	var b strings.Builder
	b.WriteString("| proxy | goal | workload | measured (median; ratio of medians) | met? |\n|---|---|---|---|---|\n")
	for _, f := range findings {
		fmt.Fprintf(&b, "| %s | %s | %d × %d | %s | %s |\n",
			f.Goal.Proxy, f.Goal.Text, f.Workload.N, f.Workload.M, f.Measured, f.Met)
	}
	return b.String()
}
