package ipvs

import (
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/internal/xtables"
	"github.com/kproxy/kproxy/proxier"
)

// tracer follows a connection's first packet through a desired State as
// the kernel would, with xtables.Tracer for the rules: nat PREROUTING
// (OUTPUT for the node's own traffic), filter INPUT, IPVS (LOCAL_IN, or
// LOCAL_OUT before filter OUTPUT for the node's traffic), filter OUTPUT,
// nat POSTROUTING. Every real server is followed, so a trace returns every
// possible outcome.
type tracer struct {
	*xtables.Tracer
	t     testing.TB
	s     *State
	fam   proxier.Family
	local map[netip.Addr]bool // the node's addresses (interfaces and kube-ipvs0)
}

func newTracer(t testing.TB, s *State, fam proxier.Family, nodeAddrs []netip.Addr) *tracer {
	tr := &tracer{Tracer: xtables.NewTracer(t, s.Rules), t: t, s: s, fam: fam, local: maps.Clone(s.Addrs)}
	for _, a := range nodeAddrs {
		tr.local[a] = true
	}
	tr.IsLocal = func(a netip.Addr) bool { return tr.local[a] || a.IsLoopback() }
	tr.MatchSet = tr.inSet
	// The applier inserts each jump at the top of its built-in chain: the
	// last one of the list comes first.
	for _, j := range jumps {
		tr.InsertRule(j.table, j.chain, j.rule())
	}
	return tr
}

// trace returns every outcome of one packet.
func (tr *tracer) trace(pk flowtest.Packet) []flowtest.Outcome {
	p, natHook := pk.TraceStart("veth0")
	fromNode := pk.Source == flowtest.FromNode
	p, v := tr.run("nat", natHook, p)
	if v != "" && v != "RETURN" {
		tr.t.Fatalf("tracer: nat %s ended in %s", natHook, v)
	}
	if !fromNode {
		if !tr.local[p.Dst] {
			return []flowtest.Outcome{{Verdict: "not proxied (forwarded)"}}
		}
		if out, ok := tr.filter("INPUT", p); !ok {
			return out
		}
	}
	vs := tr.s.VirtualServers[VSKey{Protocol(strings.ToUpper(p.Protocol)), p.Dst, uint16(p.DstPort)}]
	if vs == nil {
		if fromNode {
			if out, ok := tr.filter("OUTPUT", p); !ok {
				return out
			}
		}
		return []flowtest.Outcome{{Verdict: "not proxied (delivered to the node)"}}
	}
	var outs []flowtest.Outcome
	for _, d := range slices.SortedFunc(maps.Keys(vs.Dests), netip.AddrPort.Compare) {
		if vs.Dests[d].Weight == 0 {
			continue
		}
		q := p
		q.Dst, q.DstPort, q.In = d.Addr(), int(d.Port()), ""
		// IPVS sends the rewritten packet through LOCAL_OUT (filter
		// OUTPUT) and POSTROUTING.
		if out, ok := tr.filter("OUTPUT", q); !ok {
			outs = append(outs, out...)
			continue
		}
		_, v := tr.run("nat", "POSTROUTING", q)
		outs = append(outs, flowtest.Outcome{Verdict: flowtest.Forward, Endpoint: d.String(), Masquerade: v == "MASQUERADE"})
	}
	if len(outs) == 0 {
		// IPVS answers ICMP port unreachable when no real server is left.
		return []flowtest.Outcome{{Verdict: flowtest.Reject}}
	}
	return outs
}

// filter runs a filter hook; ok is false when the packet ended there.
func (tr *tracer) filter(hook string, p xtables.TracePacket) ([]flowtest.Outcome, bool) {
	switch _, v := tr.run("filter", hook, p); v {
	case "DROP":
		return []flowtest.Outcome{{Verdict: flowtest.Drop}}, false
	case "REJECT":
		return []flowtest.Outcome{{Verdict: flowtest.Reject}}, false
	}
	return nil, true
}

// run evaluates a chain: this mode's rules make no random choice, so
// there is one outcome.
func (tr *tracer) run(table, chain string, p xtables.TracePacket) (xtables.TracePacket, string) {
	outs := tr.Run(table, chain, p)
	if len(outs) != 1 {
		tr.t.Fatalf("tracer: %s/%s has %d outcomes for %s, want one", table, chain, len(outs), p)
	}
	return outs[0].Packet, outs[0].Verdict
}

// inSet reports whether the packet matches set name with the given flags.
func (tr *tracer) inSet(name, flags string, p xtables.TracePacket) bool {
	def, ok := ownedSets(tr.fam)[name]
	if !ok {
		tr.t.Fatalf("tracer: unknown set %s", name)
	}
	entries := tr.s.Sets[name]
	key := entryIPPort(p.Dst, Protocol(strings.ToUpper(p.Protocol)), uint16(p.DstPort))
	switch def.kind + " " + flags {
	case "hash:ip dst":
		return entries[p.Dst.String()]
	case "hash:ip,port dst,dst":
		return entries[key]
	case "hash:ip,port,ip dst,dst,src":
		return entries[key+","+p.Src.String()]
	case "hash:ip,port,net dst,dst,src":
		for e := range entries {
			pe, err := ParseEntry(e)
			if err == nil && pe.String("hash:ip,port") == key && pe.IP2.Contains(p.Src) {
				return true
			}
		}
		return false
	}
	tr.t.Fatalf("tracer: set %s (%s) matched with %s", name, def.kind, flags)
	return false
}
