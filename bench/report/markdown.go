package report

import (
	"fmt"
	"sort"
	"strings"
)

// metric is one line of a workload table.
type metric struct {
	label   string
	get     func(Row) F
	prec    int
	noRatio bool // context, not a measurement of the proxy
}

// over returns the limit a row's measurement did not finish within (0: none);
// only the first sync has one.
func (m metric) over(r Row) float64 {
	if m.label == metrics[0].label {
		return r.FirstSyncOver
	}
	return 0
}

func intF(v int) F {
	if v == 0 {
		return NaN
	}
	return F(v)
}

var metrics = []metric{
	{"first sync, fresh node: exec → done, wall (s) ¹", func(r Row) F { return r.FirstSyncWall }, 3, false},
	{"first sync: full sync duration, metric (s)", func(r Row) F { return r.FirstSyncMetric }, 3, false},
	{"first sync: of which iptables-restore / nft ran (s) ⁹", func(r Row) F { return r.FirstSyncKernelWrite }, 3, true},
	{"full sync on restart over existing rules: exec → done, wall (s) ²", func(r Row) F { return r.RestartSyncWall }, 3, false},
	{"full sync on restart: duration, metric (s)", func(r Row) F { return r.RestartSyncMetric }, 3, false},
	{"full sync on restart: of which iptables-restore / nft ran (s) ⁹", func(r Row) F { return r.RestartKernelWrite }, 3, true},
	{"partial sync, 1 Service changed: duration, metric (s) ³", func(r Row) F { return r.PartialMetric }, 3, false},
	{"partial sync: of which iptables-restore / nft ran (s) ⁹", func(r Row) F { return r.PartialKernelWrite }, 3, true},
	{"partial sync: API update → sync done, wall (s)", func(r Row) F { return r.PartialWall }, 3, false},
	{"floor: iptables-restore --noflush of KUBE-SERVICES alone (s) ⁸", func(r Row) F { return r.KubeServicesWall }, 3, true},
	{"network programming p50: create → connection answered (s)", func(r Row) F { return r.ProgP50 }, 3, false},
	{"network programming p90 (s)", func(r Row) F { return r.ProgP90 }, 3, false},
	{"network programming p99 (s)", func(r Row) F { return r.ProgP99 }, 3, false},
	{"network programming, proxy's own metric, mean (s)", func(r Row) F { return r.ProgMetricMean }, 3, false},
	{"first packet via ClusterIP p50 (µs)", func(r Row) F { return r.FirstPacketP50 }, 0, false},
	{"first packet via ClusterIP p99 (µs)", func(r Row) F { return r.FirstPacketP99 }, 0, false},
	{"first packet direct to pod p50 (µs)", func(r Row) F { return r.DirectP50 }, 0, false},
	{"first packet direct to pod p99 (µs)", func(r Row) F { return r.DirectP99 }, 0, false},
	{"first packet ClusterIP / direct to pod, p50 (×) ⁷", firstPacketOverDirect, 2, false},
	{"first-packet connects that failed", func(r Row) F { return intF(r.FirstPacketFailed) }, 0, true},
	{"RSS at steady state (MB) ⁴", func(r Row) F { return r.RSSMB }, 1, false},
	{"peak RSS (MB)", func(r Row) F { return r.HWMMB }, 1, false},
	{"CPU, process + children (s) ⁵", func(r Row) F { return r.CPU }, 2, false},
	{"rules (iptables -A, all tables; nft: statements in table ip kube-proxy; IPVS: entries)", func(r Row) F { return intF(r.Rules) }, 0, false},
	{"chains", func(r Row) F { return intF(r.Chains) }, 0, false},
	{"host load average (1 min) at the end ⁶", func(r Row) F { return r.LoadAvg }, 1, true},
}

// firstPacketOverDirect is a row's first-packet cost relative to the rig's
// floor, a connect to the pod measured interleaved with it.
func firstPacketOverDirect(r Row) F {
	if !r.FirstPacketP50.Valid() || !r.DirectP50.Valid() || r.DirectP50 == 0 {
		return NaN
	}
	return r.FirstPacketP50 / r.DirectP50
}

// Footnotes explains the table rows; the README repeats them.
const Footnotes = `Each cell is the median over the repeats, with the min–max in brackets when they differ; ratios are of medians.
¹ Floor: iptables-restore of the upstream ruleset into an empty namespace; nft-floor: nft -f of kproxy's nftables table into an empty namespace (upstream's when kproxy did not run, and in runs before 2026-12-07's second: until then the two tables were identical; now kproxy's endpoint choice differs, see the README's "Differences from kube-proxy").
² Floor: iptables-restore --noflush of the same ruleset over the identical loaded ruleset.
³ Floors: one Service's endpoint moving to an unused address and back, into the loaded ruleset (iptables-restore --noflush / nft -f): iptables, its KUBE-SVC chain rewritten, a new KUBE-SEP chain, the old one deleted; nftables (neither layout has endpoint chains without affinity), its service chain flushed and refilled. A bare delta of the floor's ruleset (¹), not kproxy's own writes (kproxy's iptables partial sync also rewrites one bucket chain).
⁴ Floor: peak RSS of iptables-restore.
⁵ Proxies: over the whole scripted workload (first sync, partial syncs, programming probes, first-packet probes), excluding the restart. Floor: the fresh restore.
⁶ The machine is shared (control plane, load generator, probes, and anything else running); a high load inflates absolute figures.
⁷ The rig's floor for a first packet: connects to the pod interleaved with those via a ClusterIP, from the same client. It is not free of rules: a packet to the pod still walks the proxy's nat chains (all of upstream iptables' KUBE-SERVICES).
⁸ What upstream's iptables partial sync writes at least: its whole KUBE-SERVICES chain (kproxy writes one bucket chain).
⁹ kproxy only (kproxy_sync_kernel_write_duration_seconds): the iptables-restore or nft process, exec to exit, or, for an nftables partial sync sent over netlink (from 2026-12-07's nft8 on), the batch from its send to the kernel's last answer; the rest of the sync's metric is kproxy's own work (snapshot, rendering, the text, reading rules back, conntrack cleanup). Not in runs before 2026-12-07's nft6.
`

func (f F) format(prec int) string {
	if !f.Valid() {
		return "–"
	}
	return fmt.Sprintf("%.*f", prec, float64(f))
}

func ratio(format string, a, b F) string {
	if !a.Valid() || !b.Valid() || b == 0 {
		return "–"
	}
	return fmt.Sprintf(format, float64(a)/float64(b))
}

// Workload is one (N, M) pair.
type Workload struct{ N, M int }

// Workloads returns the run's workloads in order (by M, then N).
func (r *Results) Workloads() []Workload {
	seen := map[Workload]bool{}
	var ws []Workload
	for _, row := range r.Rows {
		w := Workload{row.N, row.M}
		if !seen[w] {
			seen[w] = true
			ws = append(ws, w)
		}
	}
	sort.Slice(ws, func(i, j int) bool {
		if ws[i].M != ws[j].M {
			return ws[i].M < ws[j].M
		}
		return ws[i].N < ws[j].N
	})
	return ws
}

// Markdown renders the results as one table per workload.
func (r *Results) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# kproxy benchmark, %s\n\n", r.Started.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "Machine: %s. Command: `%s`.\n\n%s\n\n", r.Machine.Summary(), r.Command, r.Settings)
	for _, w := range r.Workloads() {
		b.WriteString(r.Table(w))
		b.WriteString("\n")
	}
	b.WriteString(Footnotes)
	return b.String()
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(strings.ReplaceAll(s, "|", "/")), " ")
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}
