package iptables

import (
	"net/netip"
	"testing"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/internal/xtables"
)

// tracer follows a connection's first packet through rendered
// iptables-restore text plus the jump rules, with xtables.Tracer, through
// the hooks the kernel passes it: nat PREROUTING (or OUTPUT for the
// node's own traffic), filter INPUT/FORWARD (or OUTPUT), nat POSTROUTING.
type tracer struct {
	*xtables.Tracer
	local []netip.Prefix // the node's own addresses
	// podIface is the interface local pods' packets come in on (the
	// node's own have none, everyone else's come in on eth0).
	podIface string
}

func newTracer(t testing.TB, restore string, nodeIP string) *tracer {
	tr := &tracer{Tracer: xtables.NewTracer(t, restore),
		local: []netip.Prefix{netip.MustParsePrefix(nodeIP + "/32"), netip.MustParsePrefix("127.0.0.0/8")}, podIface: "veth0"}
	tr.IsLocal = tr.isLocal
	// Built-in chains hold the jump rules; each was inserted at the top,
	// so the last one ensured comes first.
	for _, j := range append(append([]jumpRule{}, jumpRules...), kubeletJumpRules...) {
		if _, ok := tr.Chains[j.table][j.to]; !ok {
			continue // chain not rendered (KUBE-FIREWALL without localhost NodePorts)
		}
		tr.Insert(j.table, j.from, j.args())
	}
	return tr
}

func (tr *tracer) isLocal(a netip.Addr) bool {
	for _, p := range tr.local {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// trace returns every outcome of one packet.
func (tr *tracer) trace(pk flowtest.Packet) []flowtest.Outcome {
	p, natHook := pk.TraceStart(tr.podIface)
	filterHook := ""
	if pk.Source == flowtest.FromNode {
		filterHook = "OUTPUT"
	}
	var outs []flowtest.Outcome
	for _, nat := range tr.Run(tableNAT, natHook, p) {
		hook := filterHook
		if hook == "" {
			hook = "FORWARD"
			if tr.isLocal(nat.Packet.Dst) {
				hook = "INPUT"
			}
		}
		for _, filter := range tr.Run(tableFilter, hook, nat.Packet) {
			switch filter.Verdict {
			case "DROP":
				outs = append(outs, flowtest.Outcome{Verdict: flowtest.Drop})
				continue
			case "REJECT":
				outs = append(outs, flowtest.Outcome{Verdict: flowtest.Reject})
				continue
			}
			for _, post := range tr.Run(tableNAT, "POSTROUTING", filter.Packet) {
				if post.Packet.DNAT == "" {
					outs = append(outs, flowtest.Outcome{Verdict: "not proxied"})
					continue
				}
				outs = append(outs, flowtest.Outcome{Verdict: flowtest.Forward, Endpoint: post.Packet.DNAT, Masquerade: post.Verdict == "MASQUERADE"})
			}
		}
	}
	return outs
}
