package harness

import "github.com/kproxy/kproxy/bench/report"

// floorDumps keeps the rulesets the floors load: one iptables-save dump,
// upstream's if upstream ran, else the first kproxy one captured; and one
// nftables table, kproxy's if kproxy ran, else upstream's. kproxy's
// nftables layout chooses endpoints without kube-proxy's anonymous maps
// (README, "Differences from kube-proxy"), so only its own table is "the
// same ruleset" its first sync is held against.
type floorDumps struct {
	iptables, nft floorDump
}

type floorDump struct {
	dump string
	from report.Kind
}

// offer records the dump a proxy left, if the floor of its family has none
// yet or only one of the kind it prefers less.
func (f *floorDumps) offer(spec Spec, dump string) {
	if dump == "" {
		return
	}
	slot, prefer := &f.iptables, report.KindUpstream
	if spec.Mode == "nftables" {
		slot, prefer = &f.nft, report.KindKproxy
	}
	if slot.dump == "" || spec.Kind == prefer && slot.from != prefer {
		*slot = floorDump{dump: dump, from: spec.Kind}
	}
}
