package harness

import "github.com/kproxy/kproxy/bench/report"

// floorDumps keeps the rulesets the floors load: one iptables-save dump and
// one nftables table, each upstream's if upstream ran, else the first
// kproxy one captured.
type floorDumps struct {
	iptables, nft floorDump
}

type floorDump struct {
	dump string
	from report.Kind
}

// offer records the dump a proxy left, if the floor of its family has none
// yet or only kproxy's and this one is upstream's.
func (f *floorDumps) offer(spec Spec, dump string) {
	if dump == "" {
		return
	}
	slot := &f.iptables
	if spec.Mode == "nftables" {
		slot = &f.nft
	}
	if slot.dump == "" || spec.Kind == report.KindUpstream && slot.from != report.KindUpstream {
		*slot = floorDump{dump: dump, from: spec.Kind}
	}
}
