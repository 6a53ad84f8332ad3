package nftables

import (
	"net/netip"
	"slices"

	"sigs.k8s.io/knftables"

	"github.com/kproxy/kproxy/proxier"
)

// setNodePortCIDRs holds the --nodeport-addresses CIDRs. kube-proxy puts
// the node's interface addresses inside them into nodeport-ips instead;
// an interval set of the CIDRs with "fib daddr type local" needs no I/O
// and follows address changes (see README.md).
const setNodePortCIDRs = "nodeport-cidrs"

// nodePortPlan is where NodePorts answer: every local address but
// loopback (all), or the addresses in ips (kube-proxy's nodeport-ips:
// "primary", the node's address) and the local addresses in cidrs.
type nodePortPlan struct {
	all   bool
	ips   []netip.Addr
	cidrs []netip.Prefix
}

func planNodePorts(dests []proxier.NodePortDest) nodePortPlan {
	var plan nodePortPlan
	for _, dest := range dests {
		switch {
		case dest.All:
			return nodePortPlan{all: true}
		case dest.Local:
			plan.cidrs = append(plan.cidrs, dest.Prefix)
		case !slices.Contains(plan.ips, dest.Prefix.Addr()):
			plan.ips = append(plan.ips, dest.Prefix.Addr())
		}
	}
	plan.cidrs = outermost(plan.cidrs)
	return plan
}

// matches are the destination matches of the NodePort rules, one rule
// each; nat adds the "fib daddr type local" kube-proxy writes in nat
// "services" when NodePorts answer everywhere.
func (plan *nodePortPlan) matches(r *renderer, nat bool) []string {
	if plan.all {
		if nat {
			return []string{"fib daddr type local " + r.notLoopback}
		}
		return []string{r.notLoopback}
	}
	var out []string
	if len(plan.ips) > 0 {
		out = append(out, knftables.Concat(r.ipX, "daddr", "@", setNodePortIPs))
	}
	if len(plan.cidrs) > 0 {
		out = append(out, knftables.Concat(r.ipX, "daddr", "@", setNodePortCIDRs, "fib daddr type local"))
	}
	return out
}

// writeNodePortSets fills nodeport-ips and nodeport-cidrs, or removes the
// unused ones (their rules went with the flush of their chains). Their
// types and flags never change, so they are not deleted before a write.
func (r *renderer) writeNodePortSets() {
	ips := &knftables.Set{Name: setNodePortIPs, Type: r.addrType, Comment: knftables.PtrTo("IPs that accept NodePort traffic")}
	keys := make([]string, len(r.nodePorts.ips))
	for i, ip := range r.nodePorts.ips {
		keys[i] = ip.String()
	}
	r.writeOrDeleteSet(ips, keys)
	cidrs := &knftables.Set{Name: setNodePortCIDRs, Type: r.addrType, Flags: []knftables.SetFlag{knftables.IntervalFlag},
		Comment: knftables.PtrTo("CIDRs whose local addresses accept NodePort traffic")}
	keys = make([]string, len(r.nodePorts.cidrs))
	for i, p := range r.nodePorts.cidrs {
		keys[i] = p.String()
	}
	r.writeOrDeleteSet(cidrs, keys)
}

// writeOrDeleteSet makes set hold exactly keys, or deletes it when there
// are none (added first: deleting a missing set fails).
func (r *renderer) writeOrDeleteSet(set *knftables.Set, keys []string) {
	if len(keys) == 0 {
		r.ensureGone(set)
		return
	}
	r.tx.Add(set)
	r.flush(set)
	for _, k := range keys {
		r.tx.Add(&knftables.Element{Set: set.Name, Key: []string{k}})
	}
}

// outermost returns the prefixes without those inside another one (or
// equal to an earlier one): an interval set rejects overlapping elements.
func outermost(prefixes []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for i, p := range prefixes {
		inside := false
		for j, o := range prefixes {
			if i != j && o.Bits() <= p.Bits() && o.Contains(p.Addr()) && (o.Bits() < p.Bits() || j < i) {
				inside = true
			}
		}
		if !inside {
			out = append(out, p.Masked())
		}
	}
	return out
}
