package userspacebench

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/kproxy/kproxy/bench/report"
)

// results collects every sample by scenario and path.
type results struct {
	bulk     map[string][]cpuSample
	open, nw map[string][]time.Duration // request/response latencies
}

func newResults() *results {
	return &results{bulk: map[string][]cpuSample{}, open: map[string][]time.Duration{}, nw: map[string][]time.Duration{}}
}

func key(scenario, path string) string { return scenario + "/" + path }

func (r *results) add(scenario, path string, bulk cpuSample, open, nw []time.Duration) {
	k := key(scenario, path)
	r.bulk[k] = append(r.bulk[k], bulk)
	r.open[k] = append(r.open[k], open...)
	r.nw[k] = append(r.nw[k], nw...)
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// bulkMedian is the median over rounds of f of the bulk samples.
func (r *results) bulkMedian(k string, f func(cpuSample) float64) float64 {
	var v []float64
	for _, s := range r.bulk[k] {
		v = append(v, f(s))
	}
	if len(v) == 0 {
		return 0
	}
	return median(v)
}

func gbps(s cpuSample) float64 { return s.gbps }

var scenarioLabel = map[string]string{
	scenarioShared: "shared: client, server and proxy on all CPUs",
	scenarioPinned: "pinned: client and server on one CPU, proxy on another",
}

// report renders the generated part of RESULTS.md.
func (r *results) report(scenarios []scenario, paths []benchPath, rounds int, bulkD time.Duration, prov report.Provenance) string {
	var b strings.Builder
	names := pathNames(paths)
	proxies := names[1:]
	fmt.Fprintf(&b, "# userspace proxy benchmark\n\n")
	fmt.Fprintf(&b, "Measured %s on %d CPUs (%s/%s, %s), client and server pods on one node, %d interleaved rounds; kproxy from %s.\n",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), rounds, provLabel(prov))
	fmt.Fprintf(&b, "Paths, all to the same server pod: **direct** (pod → node routing → pod); **kproxy** (the userspace proxy as its own process in the node namespace, reached through its redirect rules)")
	if slices.Contains(names, pathHAProxy) {
		fmt.Fprintf(&b, "; **haproxy** (Debian's haproxy 2.6 in TCP mode, splicing both ways, reached through the same kind of nat REDIRECT rule: the reference userspace TCP proxy)")
	}
	fmt.Fprintf(&b, ".\nReproduce with `KPROXY_BENCH=1 go test ./bench/userspace/ -run TestUserspaceBench -v -write` (as root).\n\n")

	fmt.Fprintf(&b, "**Bulk TCP throughput** (median of %d × %s):\n\n| CPU placement | %s |", rounds, bulkD, strings.Join(names, " | "))
	for _, p := range proxies {
		fmt.Fprintf(&b, " %s / direct |", p)
	}
	fmt.Fprintf(&b, "\n|---|%s\n", strings.Repeat("---|", len(names)+len(proxies)))
	for _, sc := range scenarios {
		fmt.Fprintf(&b, "| %s |", scenarioLabel[sc.name])
		for _, n := range names {
			fmt.Fprintf(&b, " %.2f Gbit/s |", r.bulkMedian(key(sc.name, n), gbps))
		}
		for _, p := range proxies {
			fmt.Fprintf(&b, " %.0f%% |", 100*r.ratio(sc.name, p))
		}
		b.WriteString("\n")
	}

	fmt.Fprintf(&b, "\n**CPU per GB moved** in bulk (utime+stime from /proc, median over rounds; the machine column counts every CPU's busy time):\n\n")
	fmt.Fprintf(&b, "| CPU placement | path | client+server process | proxy process | both | machine | both vs direct |\n|---|---|---|---|---|---|---|\n")
	for _, sc := range scenarios {
		direct := r.bulkMedian(key(sc.name, pathDirect), func(s cpuSample) float64 { return perGB(s.self+s.proxy, s.bytes) })
		for _, n := range names {
			k := key(sc.name, n)
			self := r.bulkMedian(k, func(s cpuSample) float64 { return perGB(s.self, s.bytes) })
			both := r.bulkMedian(k, func(s cpuSample) float64 { return perGB(s.self+s.proxy, s.bytes) })
			proxy := "–"
			if n != pathDirect {
				proxy = fmt.Sprintf("%.3f", r.bulkMedian(k, func(s cpuSample) float64 { return perGB(s.proxy, s.bytes) }))
			}
			fmt.Fprintf(&b, "| %s | %s | %.3f | %s | %.3f | %.3f | %.2f× |\n", sc.name, n, self, proxy, both,
				r.bulkMedian(k, func(s cpuSample) float64 { return perGB(s.all, s.bytes) }), both/direct)
		}
	}

	fmt.Fprintf(&b, "\n**64 B request/response latency**:\n\n| CPU placement | measure | %s |", strings.Join(names, " | "))
	for _, p := range proxies {
		fmt.Fprintf(&b, " %s − direct |", p)
	}
	fmt.Fprintf(&b, "\n|---|---|%s\n", strings.Repeat("---|", len(names)+len(proxies)))
	for _, sc := range scenarios {
		for _, m := range []struct {
			label string
			lat   map[string][]time.Duration
		}{{"open connection", r.open}, {"new connection each", r.nw}} {
			for _, q := range []float64{0.5, 0.99} {
				fmt.Fprintf(&b, "| %s | %s, p%.0f (%d samples) |", sc.name, m.label, 100*q, len(m.lat[key(sc.name, pathDirect)]))
				d := pct(m.lat[key(sc.name, pathDirect)], q)
				for _, n := range names {
					fmt.Fprintf(&b, " %s |", us(pct(m.lat[key(sc.name, n)], q)))
				}
				for _, p := range proxies {
					fmt.Fprintf(&b, " %+.1f µs |", float64((pct(m.lat[key(sc.name, p)], q)-d).Nanoseconds())/1e3)
				}
				b.WriteString("\n")
			}
		}
	}

	met := map[bool]string{true: "met", false: "NOT met"}
	var goals []string
	for _, sc := range scenarios {
		ratio := r.ratio(sc.name, pathKproxy)
		goals = append(goals, fmt.Sprintf("%s %s (%.0f%%)", sc.name, met[ratio >= 0.9], 100*ratio))
	}
	added := pct(r.open[key(scenarioShared, pathKproxy)], 0.5) - pct(r.open[key(scenarioShared, pathDirect)], 0.5)
	fmt.Fprintf(&b, "\nGoals: bulk throughput >= 90%% of direct: %s; p50 added latency on an open connection in the tens of microseconds (shared): %s (%+.1f µs)%s.\n",
		strings.Join(goals, ", "), met[added < 100*time.Microsecond], float64(added.Nanoseconds())/1e3, r.newConnGoal())
	return b.String()
}

// ratio is the median throughput of path over direct's, in one scenario.
func (r *results) ratio(scenario, path string) float64 {
	d := r.bulkMedian(key(scenario, pathDirect), gbps)
	if d == 0 {
		return 0
	}
	return r.bulkMedian(key(scenario, path), gbps) / d
}
