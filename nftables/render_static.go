package nftables

import (
	"strings"

	"sigs.k8s.io/knftables"
)

// writeStatic writes the table, its base chains and the shared chains,
// sets and maps, flushing what a full sync rewrites. recreateBase deletes
// and re-adds the base chains first, so that a table left with other
// hooks or priorities (another version) is fixed rather than rejected.
func (r *renderer) writeStatic(recreateBase bool) {
	tx := r.tx
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("rules for kube-proxy")})
	if recreateBase && !r.noTable {
		for _, base := range baseChains {
			tx.Add(&knftables.Chain{Name: base.name})
			tx.Delete(&knftables.Chain{Name: base.name})
		}
	}
	for _, base := range baseChains {
		chain := &knftables.Chain{Name: base.name, Type: knftables.PtrTo(base.kind), Hook: knftables.PtrTo(base.hook), Priority: knftables.PtrTo(base.priority)}
		tx.Add(chain)
		r.flush(chain)
	}
	for _, j := range jumpChains {
		r.ensureShared(j.to)
		tx.Add(&knftables.Rule{Chain: j.from, Rule: knftables.Concat(j.match, "jump", j.to)})
	}
	for _, chain := range []string{chainServices, chainClusterIPsCheck, chainMasquerading} {
		r.ensureShared(chain)
	}
	r.writeNodePortSets()
	r.writeMasquerading()
	r.writeEndpointChecks()
	r.writeUnallocatedDrop()
	r.writeDispatch()
}

// ensureShared adds and flushes a shared regular chain once.
func (r *renderer) ensureShared(name string) {
	if r.shared[name] {
		return
	}
	r.shared[name] = true
	r.tx.Add(&knftables.Chain{Name: name})
	r.flush(&knftables.Chain{Name: name})
}

// flush empties obj, which a full sync then refills (unless there is no
// table yet).
func (r *renderer) flush(obj knftables.Object) {
	if !r.noTable {
		r.tx.Flush(obj)
	}
}

// ensureGone deletes obj if the table may hold it (added first: deleting
// a missing object fails).
func (r *renderer) ensureGone(obj knftables.Object) {
	if !r.noTable {
		r.tx.Add(obj)
		r.tx.Delete(obj)
	}
}

// addFlushedSet adds a shared set or map and empties it: a full sync
// writes all of its elements again, in the same transaction.
func (r *renderer) addFlushedSet(s knftables.Object) {
	r.tx.Add(s)
	r.flush(s)
}

// writeMasquerading writes the postrouting masquerade: marked packets,
// and hairpin connections (a pod reaching itself through a Service).
func (r *renderer) writeMasquerading() {
	r.addFlushedSet(&knftables.Set{Name: setHairpinConnections, Type: keyType(hairpinKey, r.addrType),
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
	r.addFlushedSet(&knftables.Set{Name: setClusterIPs, Type: keyType(clusterIPsKey, r.addrType), Comment: knftables.PtrTo("Active ClusterIPs")})
	tx.Add(&knftables.Rule{Chain: chainClusterIPsCheck, Rule: knftables.Concat(r.ipX, "daddr", "@", setClusterIPs, "reject"),
		Comment: knftables.PtrTo("Reject traffic to invalid ports of ClusterIPs")})
	for _, m := range verdictMaps {
		r.addFlushedSet(&knftables.Map{Name: m.name, Type: keyType(m.key, r.addrType) + " : verdict", Comment: knftables.PtrTo(m.comment)})
	}
	// kube-proxy's localhost NodePort rejects are off by default; make
	// sure they are gone (add, then delete: deleting alone fails when
	// there is nothing to delete).
	r.ensureGone(&knftables.Map{Name: mapLocalhostNodePortReject, Type: "inet_proto . inet_service : verdict"})

	tx.Add(&knftables.Chain{Name: chainReject, Comment: knftables.PtrTo("helper for @no-endpoint-services / @no-endpoint-nodeports")})
	r.flush(&knftables.Chain{Name: chainReject})
	tx.Add(&knftables.Rule{Chain: chainReject, Rule: "reject"})
	tx.Add(&knftables.Rule{Chain: chainServiceEndpointsCheck, Rule: knftables.Concat(
		r.ipX, "daddr . meta l4proto . th dport vmap", "@", mapNoEndpointServices)})
	for _, m := range r.nodePorts.matches(r, false) {
		tx.Add(&knftables.Rule{Chain: chainNodePortEndpointsCheck, Rule: knftables.Concat(
			m, "meta l4proto . th dport vmap", "@", mapNoEndpointNodePorts)})
	}

	r.ensureShared(chainFirewallCheck)
	tx.Add(&knftables.Rule{Chain: chainFirewallCheck, Rule: knftables.Concat(
		r.ipX, "daddr . meta l4proto . th dport vmap", "@", mapFirewallIPs)})
}

// writeUnallocatedDrop drops new connections to the addresses of the
// ServiceCIDRs that no Service holds (after the reject of unknown ports of
// the ones that are held), as kube-proxy does.
func (r *renderer) writeUnallocatedDrop() {
	if len(r.serviceCIDRs) == 0 {
		return
	}
	ranges := make([]string, len(r.serviceCIDRs))
	for i, p := range r.serviceCIDRs {
		ranges[i] = p.String()
	}
	r.tx.Add(&knftables.Rule{Chain: chainClusterIPsCheck,
		Rule:    knftables.Concat(r.ipX, "daddr", "{", strings.Join(ranges, ", "), "}", "drop"),
		Comment: knftables.PtrTo("Drop traffic to unallocated ClusterIPs")})
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
	for _, m := range r.nodePorts.matches(r, true) {
		tx.Add(&knftables.Rule{Chain: chainServices, Rule: knftables.Concat(
			m, "meta l4proto . th dport vmap", "@", mapServiceNodePorts)})
	}
}
