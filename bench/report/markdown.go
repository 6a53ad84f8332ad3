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
	{"full sync on restart over existing rules: exec → done, wall (s) ²", func(r Row) F { return r.RestartSyncWall }, 3, false},
	{"full sync on restart: duration, metric (s)", func(r Row) F { return r.RestartSyncMetric }, 3, false},
	{"partial sync, 1 Service changed: duration, metric (s) ³", func(r Row) F { return r.PartialMetric }, 3, false},
	{"partial sync: API update → sync done, wall (s)", func(r Row) F { return r.PartialWall }, 3, false},
	{"network programming p50: create → connection answered (s)", func(r Row) F { return r.ProgP50 }, 3, false},
	{"network programming p90 (s)", func(r Row) F { return r.ProgP90 }, 3, false},
	{"network programming p99 (s)", func(r Row) F { return r.ProgP99 }, 3, false},
	{"network programming, proxy's own metric, mean (s)", func(r Row) F { return r.ProgMetricMean }, 3, false},
	{"first packet via ClusterIP p50 (µs)", func(r Row) F { return r.FirstPacketP50 }, 0, false},
	{"first packet via ClusterIP p99 (µs)", func(r Row) F { return r.FirstPacketP99 }, 0, false},
	{"first packet direct to pod p50 (µs)", func(r Row) F { return r.DirectP50 }, 0, false},
	{"first packet direct to pod p99 (µs)", func(r Row) F { return r.DirectP99 }, 0, false},
	{"first-packet connects that failed", func(r Row) F { return intF(r.FirstPacketFailed) }, 0, true},
	{"RSS at steady state (MB) ⁴", func(r Row) F { return r.RSSMB }, 1, false},
	{"peak RSS (MB)", func(r Row) F { return r.HWMMB }, 1, false},
	{"CPU, process + children (s) ⁵", func(r Row) F { return r.CPU }, 2, false},
	{"rules (iptables -A, all tables; IPVS: entries)", func(r Row) F { return intF(r.Rules) }, 0, false},
	{"chains", func(r Row) F { return intF(r.Chains) }, 0, false},
	{"host load average (1 min) at the end ⁶", func(r Row) F { return r.LoadAvg }, 1, true},
}

// Footnotes explains the table rows; the README repeats them.
const Footnotes = `¹ Floor: iptables-restore of the upstream ruleset into an empty namespace.
² Floor: iptables-restore --noflush of the same ruleset over the identical loaded ruleset.
³ Floor: iptables-restore --noflush of only the nat KUBE-SERVICES chain (what every partial sync writes at least).
⁴ Floor: peak RSS of iptables-restore.
⁵ Proxies: over the whole scripted workload (first sync, partial syncs, programming probes, first-packet probes), excluding the restart. Floor: the fresh restore.
⁶ The machine is shared (control plane, load generator, probes, and anything else running); a high load inflates absolute figures.
`

func (f F) format(prec int) string {
	if !f.Valid() {
		return "–"
	}
	return fmt.Sprintf("%.*f", prec, float64(f))
}

func ratio(a, b F) string {
	if !a.Valid() || !b.Valid() || b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", float64(a)/float64(b))
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

// Rows returns the rows of one workload: upstream first, then kproxy modes,
// then the floor.
func (r *Results) RowsOf(w Workload) []Row {
	var rows []Row
	for _, row := range r.Rows {
		if row.N == w.N && row.M == w.M {
			rows = append(rows, row)
		}
	}
	order := map[Kind]int{KindUpstream: 0, KindKproxy: 1, KindFloor: 2}
	sort.SliceStable(rows, func(i, j int) bool { return order[rows[i].Kind] < order[rows[j].Kind] })
	return rows
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

// Table renders one workload: a column per proxy, then kproxy/upstream and
// kproxy/floor ratio columns for every kproxy mode.
func (r *Results) Table(w Workload) string {
	rows := r.RowsOf(w)
	var up, floor *Row
	var kps []Row
	for i := range rows {
		switch rows[i].Kind {
		case KindUpstream:
			if up == nil {
				up = &rows[i]
			}
		case KindFloor:
			floor = &rows[i]
		case KindKproxy:
			if rows[i].Status == "ok" {
				kps = append(kps, rows[i])
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "### N = %d Services × M = %d endpoints\n\n", w.N, w.M)
	if r.Machine.Source.Uncommitted() {
		b.WriteString(uncommittedNote)
	}
	head := []string{"metric"}
	for _, row := range rows {
		head = append(head, row.Proxy)
	}
	for _, k := range kps {
		if up != nil {
			head = append(head, k.Proxy+" / upstream")
		}
		if floor != nil {
			head = append(head, k.Proxy+" / floor")
		}
	}
	b.WriteString("| " + strings.Join(head, " | ") + " |\n")
	b.WriteString("|" + strings.Repeat("---|", len(head)) + "\n")
	status := []string{"status"}
	for _, row := range rows {
		s := row.Status
		if row.Error != "" {
			s += ": " + oneLine(row.Error, 120)
		}
		status = append(status, s)
	}
	for range len(head) - len(status) {
		status = append(status, "")
	}
	b.WriteString("| " + strings.Join(status, " | ") + " |\n")
	for _, m := range metrics {
		cells := []string{m.label}
		any := false
		for _, row := range rows {
			v := m.get(row)
			cell, ok := v.format(m.prec), v.Valid()
			if over := m.over(row); !ok && over > 0 {
				cell, ok = fmt.Sprintf("> %.0f", over), true
			}
			any = any || ok
			cells = append(cells, cell)
		}
		if !any {
			continue
		}
		for _, k := range kps {
			for _, base := range []*Row{up, floor} {
				switch {
				case base == nil:
				case m.noRatio:
					cells = append(cells, "")
				case !m.get(*base).Valid() && m.over(*base) > 0:
					cells = append(cells, "< "+ratio(m.get(k), F(m.over(*base))))
				default:
					cells = append(cells, ratio(m.get(k), m.get(*base)))
				}
			}
		}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	return b.String()
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(strings.ReplaceAll(s, "|", "/")), " ")
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}
