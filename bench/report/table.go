package report

import (
	"fmt"
	"strings"
)

// Floor row modes: what the floor loaded its ruleset with.
const (
	FloorIptables = "iptables-restore"
	FloorNft      = "nft -f"
)

// floorFor is the floor mode a proxy mode is compared with.
func floorFor(mode string) string {
	if mode == "nftables" {
		return FloorNft
	}
	return FloorIptables
}

// ratioBases returns what a kproxy group's figures are divided by: upstream
// in iptables mode (the reference every mode is compared with), upstream in
// the same mode (the peer, if another), and the floor of its family.
func ratioBases(k Group, gs []Group) []Group {
	var ref, peer, floor *Group
	for i := range gs {
		g := &gs[i]
		switch {
		case g.Kind == KindUpstream && (ref == nil || g.Mode == "iptables" && ref.Mode != "iptables"):
			ref = g
		case g.Kind == KindFloor && floor == nil && g.Mode == floorFor(k.Mode):
			floor = g
		}
		if g.Kind == KindUpstream && g.Mode == k.Mode && peer == nil {
			peer = g
		}
	}
	var out []Group
	for _, g := range []*Group{ref, peer, floor} {
		if g != nil && (len(out) == 0 || out[len(out)-1].Proxy != g.Proxy) {
			out = append(out, *g)
		}
	}
	return out
}

// Table renders one workload: a column per proxy (median and min–max over
// the repeats), then the ratio columns of every kproxy mode that ran (see
// ratioBases), computed from the medians.
func (r *Results) Table(w Workload) string {
	gs := r.GroupsOf(w)
	head := []string{"metric"}
	for _, g := range gs {
		head = append(head, g.Proxy)
	}
	type pair struct{ k, base Group }
	var pairs []pair
	for _, k := range gs {
		if k.Kind != KindKproxy || !k.OK() {
			continue
		}
		for _, base := range ratioBases(k, gs) {
			pairs = append(pairs, pair{k, base})
			head = append(head, k.Proxy+" / "+base.Proxy)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "### N = %d Services × M = %d endpoints\n\n", w.N, w.M)
	if r.Machine.Source.Uncommitted() {
		b.WriteString(uncommittedNote)
	}
	b.WriteString(tableLine(head))
	b.WriteString("|" + strings.Repeat("---|", len(head)) + "\n")
	status := []string{"status"}
	for _, g := range gs {
		status = append(status, g.Status())
	}
	b.WriteString(tableLine(pad(status, len(head))))
	for _, m := range metrics {
		cells := []string{m.label}
		measured := false
		for _, g := range gs {
			st := g.Stat(m)
			measured = measured || st.Samples > 0
			cells = append(cells, st.Cell(m.prec))
		}
		if !measured {
			continue
		}
		for _, p := range pairs {
			if m.noRatio {
				cells = append(cells, "")
				continue
			}
			cells = append(cells, Ratio(p.k.Stat(m), p.base.Stat(m)))
		}
		b.WriteString(tableLine(cells))
	}
	return b.String()
}

func tableLine(cells []string) string { return "| " + strings.Join(cells, " | ") + " |\n" }

func pad(cells []string, n int) []string {
	for len(cells) < n {
		cells = append(cells, "")
	}
	return cells
}
