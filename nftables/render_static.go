package nftables

import (
	"net/netip"
	"strings"

	"sigs.k8s.io/knftables"

	"github.com/kproxy/kproxy/proxier"
)

// setNodePortCIDRs holds the --nodeport-addresses CIDRs. kube-proxy's
// nodeport-ips holds the node's addresses inside them, read from the
// interfaces; an interval set of the CIDRs, with "fib daddr type local",
// needs no I/O and follows address changes (see README.md).
const setNodePortCIDRs = "nodeport-cidrs"

// writeStatic writes the table, its base chains and the shared chains,
// sets and maps, flushing what a full sync rewrites. recreateBase deletes
// and re-adds the base chains first, so that a table left with other
// hooks or priorities (another version) is fixed rather than rejected.
func (r *renderer) writeStatic(recreateBase bool) {
	tx := r.tx
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("rules for kube-proxy")})
	if recreateBase {
		for _, bc := range baseChains {
			tx.Add(&knftables.Chain{Name: bc.name})
			tx.Delete(&knftables.Chain{Name: bc.name})
		}
	}
	for _, bc := range baseChains {
		c := &knftables.Chain{Name: bc.name, Type: knftables.PtrTo(bc.kind), Hook: knftables.PtrTo(bc.hook), Priority: knftables.PtrTo(bc.priority)}
		tx.Add(c)
		tx.Flush(c)
	}
	for _, j := range jumpChains {
		r.ensureShared(j.to)
		tx.Add(&knftables.Rule{Chain: j.from, Rule: knftables.Concat(j.match, "jump", j.to)})
	}
	for _, c := range []string{chainServices, chainClusterIPsCheck, chainMasquerading} {
		r.ensureShared(c)
	}
	r.writeNodePortCIDRs()
	r.writeMasquerading()
	r.writeEndpointChecks()
	r.writeDispatch()
}

// ensureShared adds and flushes a shared regular chain once.
func (r *renderer) ensureShared(name string) {
	if r.shared[name] {
		return
	}
	r.shared[name] = true
	r.tx.Add(&knftables.Chain{Name: name})
	r.tx.Flush(&knftables.Chain{Name: name})
}

// addFlushedSet adds a shared set or map and empties it: a full sync
// writes all of its elements again, in the same transaction.
func (r *renderer) addFlushedSet(s knftables.Object) {
	r.tx.Add(s)
	r.tx.Flush(s)
}

// writeMasquerading writes the postrouting masquerade: marked packets,
// and hairpin connections (a pod reaching itself through a Service).
func (r *renderer) writeMasquerading() {
	r.addFlushedSet(&knftables.Set{Name: setHairpinConnections, Type: r.addrType + " . " + r.addrType + " . inet_proto . inet_service",
		Comment: knftables.PtrTo("service hairpin connections")})
	r.tx.Add(&knftables.Rule{Chain: chainMasquerading, Rule: knftables.Concat(
		"mark and", r.masqMark, "!= 0", "mark set mark xor", r.masqMark, "masquerade fully-random")})
	r.tx.Add(&knftables.Rule{Chain: chainMasquerading, Rule: knftables.Concat(
		"ct status dnat", r.ipX, "saddr .", r.ipX, "daddr . meta l4proto . th dport", "@", setHairpinConnections, "masquerade fully-random")})
}

// writeEndpointChecks writes the filter side: rejects for unknown ports
// of ClusterIPs, the no-endpoint verdict maps and the firewall.
func (r *renderer) writeEndpointChecks() {
	tx := r.tx
	r.addFlushedSet(&knftables.Set{Name: setClusterIPs, Type: r.addrType, Comment: knftables.PtrTo("Active ClusterIPs")})
	tx.Add(&knftables.Rule{Chain: chainClusterIPsCheck, Rule: knftables.Concat(r.ipX, "daddr", "@", setClusterIPs, "reject"),
		Comment: knftables.PtrTo("Reject traffic to invalid ports of ClusterIPs")})
	for _, m := range verdictMaps {
		r.addFlushedSet(&knftables.Map{Name: m.name, Type: strings.Replace(m.key, "addr", r.addrType, 1) + " : verdict", Comment: knftables.PtrTo(m.comment)})
	}
	// kube-proxy's localhost NodePort rejects are off by default; make
	// sure they are gone (add, then delete: deleting alone fails when
	// there is nothing to delete).
	tx.Add(&knftables.Map{Name: mapLocalhostNodePortReject, Type: "inet_proto . inet_service : verdict"})
	tx.Delete(&knftables.Map{Name: mapLocalhostNodePortReject})

	tx.Add(&knftables.Chain{Name: chainReject, Comment: knftables.PtrTo("helper for @no-endpoint-services / @no-endpoint-nodeports")})
	tx.Flush(&knftables.Chain{Name: chainReject})
	tx.Add(&knftables.Rule{Chain: chainReject, Rule: "reject"})
	tx.Add(&knftables.Rule{Chain: chainServiceEndpointsCheck, Rule: knftables.Concat(
		r.ipX, "daddr . meta l4proto . th dport vmap", "@", mapNoEndpointServices)})
	tx.Add(&knftables.Rule{Chain: chainNodePortEndpointsCheck, Rule: knftables.Concat(
		r.nodePortMatch(), "meta l4proto . th dport vmap", "@", mapNoEndpointNodePorts)})

	r.ensureShared(chainFirewallCheck)
	tx.Add(&knftables.Rule{Chain: chainFirewallCheck, Rule: knftables.Concat(
		r.ipX, "daddr . meta l4proto . th dport vmap", "@", mapFirewallIPs)})
}

// writeDispatch writes nat "services": ClusterIP masquerading, then the
// service-ips and service-nodeports verdict maps.
func (r *renderer) writeDispatch() {
	tx := r.tx
	switch {
	case r.opts.MasqueradeAll:
		tx.Add(&knftables.Rule{Chain: chainServices, Rule: knftables.Concat(r.ipX, "daddr", "@", setClusterIPs, r.masqRule),
			Comment: knftables.PtrTo("masquerade all clusterIP traffic")})
	case r.ifNotLocal != "":
		// Off-cluster clients routed to a Service IP may be sent to
		// another node: masquerade them so that replies come back here.
		tx.Add(&knftables.Rule{Chain: chainServices, Rule: knftables.Concat(r.ipX, "daddr", "@", setClusterIPs, r.ifNotLocal, r.masqRule),
			Comment: knftables.PtrTo("masquerade clusterIP traffic from outside cluster")})
	}
	tx.Add(&knftables.Rule{Chain: chainServices, Rule: knftables.Concat(
		r.ipX, "daddr . meta l4proto . th dport vmap", "@", mapServiceIPs)})
	match := r.nodePortMatch()
	if r.nodePortAll {
		match = "fib daddr type local " + match
	}
	tx.Add(&knftables.Rule{Chain: chainServices, Rule: knftables.Concat(
		match, "meta l4proto . th dport vmap", "@", mapServiceNodePorts)})
}

// nodePortMatch matches the destinations NodePorts answer on: every
// local address but loopback (with "fib daddr type local" in nat), or
// the --nodeport-addresses CIDRs' local addresses.
func (r *renderer) nodePortMatch() string {
	if r.nodePortAll {
		return r.notLoopback
	}
	return knftables.Concat(r.ipX, "daddr", "@", setNodePortCIDRs, "fib daddr type local")
}

// writeNodePortCIDRs fills the nodeport-cidrs set, or makes sure it is
// gone when NodePorts answer everywhere. Its flags never change, so it is
// not deleted before being written.
func (r *renderer) writeNodePortCIDRs() {
	set := &knftables.Set{Name: setNodePortCIDRs, Type: r.addrType, Flags: []knftables.SetFlag{knftables.IntervalFlag},
		Comment: knftables.PtrTo("CIDRs whose local addresses accept NodePort traffic")}
	// kube-proxy's nodeport-ips is not used: remove it (its rules are
	// gone, their chains were flushed above).
	r.tx.Add(&knftables.Set{Name: setNodePortIPs, Type: r.addrType})
	r.tx.Delete(&knftables.Set{Name: setNodePortIPs})
	r.tx.Add(set)
	if r.nodePortAll {
		r.tx.Delete(&knftables.Set{Name: setNodePortCIDRs})
		return
	}
	r.tx.Flush(set)
	for _, p := range outermost(r.nodePortDests) {
		r.tx.Add(&knftables.Element{Set: setNodePortCIDRs, Key: []string{p.String()}})
	}
}

// outermost returns the destinations' prefixes without those inside
// another one (the primary address inside a CIDR): an interval set
// rejects overlapping elements.
func outermost(dests []proxier.NodePortDest) []netip.Prefix {
	var out []netip.Prefix
	for i, d := range dests {
		inside := false
		for j, o := range dests {
			if i != j && o.Prefix.Bits() <= d.Prefix.Bits() && o.Prefix.Contains(d.Prefix.Addr()) && (o.Prefix.Bits() < d.Prefix.Bits() || j < i) {
				inside = true
			}
		}
		if !inside {
			out = append(out, d.Prefix)
		}
	}
	return out
}
