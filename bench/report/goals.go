package report

import (
	"fmt"
	"strings"
)

// Goal is a target the issues set for one kproxy mode, checked against the
// medians of the runs: Proxy's figure divided by Base's (or, with no Base,
// the figure itself) must be at most Max on each workload of At (every
// workload run when At is nil; a listed workload not run is shown as not
// measured).
type Goal struct {
	Text  string // the goal as stated
	Proxy string
	Base  string // "" for a bound on the figure itself, SmallestN for flatness in N
	Stat  string // label prefix of the metric (see metricByLabel)
	Max   float64
	At    []Workload
}

// SmallestN as a Goal's Base divides by the same proxy's figure on the
// workload with the same M and the smallest N: the goal is flatness in N.
const SmallestN = "same proxy at the smallest N"

// MinSyncPeriod is the proxies' min-sync-period in the bench (seconds).
const MinSyncPeriod = 1.0

var (
	at10k   = []Workload{{10000, 2}}
	at5kx50 = []Workload{{5000, 50}}
)

// Goals are the targets of the benchmark issues, in the order the README
// lists them.
var Goals = []Goal{
	{"first full sync ≤ 1.5× the floor", "kproxy-iptables", "floor", "first sync: full sync duration", 1.5, nil},
	{"one changed Service ≤ 0.05× upstream's partial sync (or the next line)", "kproxy-iptables", "upstream-iptables", "partial sync, 1 Service", 0.05, at10k},
	{"…or ≤ 1.2× a bare one-Service delta of upstream's ruleset", "kproxy-iptables", "floor", "partial sync, 1 Service", 1.2, at10k},
	{"RSS ≤ 0.5× upstream", "kproxy-iptables", "upstream-iptables", "RSS at steady state", 0.5, nil},
	{"first packet p50 ≤ 0.2× upstream", "kproxy-iptables", "upstream-iptables", "first packet via ClusterIP p50", 0.2, []Workload{{10000, 2}, {30000, 2}}},
	{"network programming p50 ≤ min-sync-period + 100 ms", "kproxy-iptables", "", "network programming p50", MinSyncPeriod + 0.1, at10k},
	{"first full sync ≤ 1.5× the floor", "kproxy-nftables", "nft-floor", "first sync: full sync duration", 1.5, nil},
	{"first full sync ≤ 0.05× upstream", "kproxy-nftables", "upstream-nftables", "first sync: full sync duration", 0.05, at5kx50},
	{"one changed Service ≤ 0.1× upstream's partial sync", "kproxy-nftables", "upstream-nftables", "partial sync, 1 Service", 0.1, nil},
	{"one changed Service within 2× of a bare nft -f of a one-Service delta", "kproxy-nftables", "nft-floor", "partial sync, 1 Service", 2, nil},
	{"cold start to first sync done ≤ 0.1× upstream", "kproxy-nftables", "upstream-nftables", "first sync, fresh node", 0.1, nil},
	{"RSS ≤ 0.5× upstream", "kproxy-nftables", "upstream-nftables", "RSS at steady state", 0.5, nil},
	{"first packet p50 no worse than upstream", "kproxy-nftables", "upstream-nftables", "first packet via ClusterIP p50", 1, nil},
	{"first packet p50 flat in N (within 20% of the smallest N's)", "kproxy-nftables", SmallestN, "first packet via ClusterIP p50", 1.2, nil},
	{"network programming p50 ≤ min-sync-period + 100 ms", "kproxy-nftables", "", "network programming p50", MinSyncPeriod + 0.1, at10k},
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

// CheckGoals evaluates goals on the workloads they name (every workload
// of runs for a goal without At); a workload measured in several runs is
// taken from the last run with both figures.
func CheckGoals(goals []Goal, runs []*Results) []GoalFinding {
	var out []GoalFinding
	for _, g := range goals {
		ws := g.At
		if ws == nil {
			ws = workloadsOf(runs)
		}
		for _, w := range ws {
			if g.Base == SmallestN && smallestN(runs, w) == w {
				continue // flatness needs a smaller N to compare with
			}
			out = append(out, checkGoal(g, w, runs))
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
	if g.Base == "" {
		if a, ok := lastStat(runs, w, g.Proxy, m); ok {
			f.Measured, f.Met = a.Cell(m.prec), boundVerdict(a.Median, g.Max)
		}
		return f
	}
	bw, base := w, g.Base
	if base == SmallestN {
		bw, base = smallestN(runs, w), g.Proxy
	}
	a, b, ok := lastPair(runs, w, g.Proxy, bw, base, m)
	if !ok {
		return f
	}
	f.Measured = fmt.Sprintf("%s (%s / %s)", RatioIn(goalRatioFormat, a, b), a.value(a.Median, m.prec), b.value(b.Median, m.prec))
	f.Met = ratioVerdict(a, b, g.Max)
	return f
}

// boundVerdict: a figure over its time limit misses any bound.
func boundVerdict(v F, max float64) string {
	switch {
	case over(v):
		return "no"
	case !v.Valid():
		return "not measured"
	case float64(v) <= max:
		return "yes"
	}
	return "no"
}

// ratioVerdict judges a's median over b's against max. With b over its
// limit the ratio is only known to be below a/limit; with a over its limit
// above limit/b.
func ratioVerdict(a, b Stat, max float64) string {
	switch {
	case over(a.Median) && over(b.Median):
		return "unknown (both over their time limits)"
	case over(b.Median):
		if float64(a.Median)/b.Over <= max {
			return "yes"
		}
		return "unknown (divisor over its time limit)"
	case over(a.Median):
		if a.Over/float64(b.Median) > max {
			return "no"
		}
		return "unknown (over its time limit)"
	}
	return boundVerdict(a.Median/b.Median, max)
}

// goalRatioFormat gives a goal's ratio three significant digits, so that
// the figure shown agrees with the verdict next to it.
const goalRatioFormat = "%.3g×"

// lastStat is proxy's figure on w from the last run that measured it.
func lastStat(runs []*Results, w Workload, proxy string, m metric) (Stat, bool) {
	for i := len(runs) - 1; i >= 0; i-- {
		if st, ok := statIn(runs[i], w, proxy, m); ok {
			return st, true
		}
	}
	return Stat{}, false
}

// lastPair is proxy's figure on w and base's on bw, both from the last run
// that measured both, so that a ratio never mixes runs.
func lastPair(runs []*Results, w Workload, proxy string, bw Workload, base string, m metric) (a, b Stat, ok bool) {
	for i := len(runs) - 1; i >= 0; i-- {
		a, aok := statIn(runs[i], w, proxy, m)
		b, bok := statIn(runs[i], bw, base, m)
		if aok && bok {
			return a, b, true
		}
	}
	return Stat{}, Stat{}, false
}

// statIn is proxy's figure on w in run r, if any repeat of it ran to the
// end or ran over its time limit.
func statIn(r *Results, w Workload, proxy string, m metric) (Stat, bool) {
	for _, g := range r.GroupsOf(w) {
		if g.Proxy != proxy {
			continue
		}
		if st := g.Stat(m); st.Samples > 0 && (g.OK() || st.Over > 0) {
			return st, true
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
