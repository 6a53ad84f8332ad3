package nftables

import (
	"net/netip"
	"strconv"

	"sigs.k8s.io/knftables"

	"github.com/kproxy/kproxy/proxier"
)

// portPlan is one service port's proxier.PortPolicy in nftables terms:
// which chains it needs and where each kind of traffic goes.
type portPlan struct {
	c                                portChains
	pp                               proxier.PortPolicy
	hasEndpoints                     bool
	usesCluster, usesLocal, usesExt  bool
	usesFirewall, affinity           bool
	internalChain, externalPolicy    string
	internalVerdict, externalVerdict string // for no-endpoint-*: "goto reject-chain" or "drop"
}

func (r *renderer) planPort(p *proxier.Port) portPlan {
	pl := portPlan{c: chainsFor(&p.ServicePort), pp: p.Policy(r.node), hasEndpoints: p.Usable.HasAny}
	pl.usesCluster = len(p.Usable.Cluster) > 0 && p.UsesClusterEndpoints()
	pl.usesLocal = len(p.Usable.Local) > 0 && p.UsesLocalEndpoints()
	// The external chain is needed even without external endpoints: it
	// short-circuits pod and node traffic to the Cluster endpoints.
	pl.usesExt = pl.hasEndpoints && p.ExternallyAccessible()
	pl.usesFirewall = pl.pp.Firewall
	pl.affinity = p.AffinityTimeout > 0
	pl.internalChain, pl.externalPolicy = pl.c.cluster, pl.c.cluster
	if p.InternalPolicyLocal {
		pl.internalChain = pl.c.local
	}
	if p.ExternalPolicyLocal {
		pl.externalPolicy = pl.c.local
	}
	pl.internalVerdict = filterVerdict(pl.pp.InternalVerdict)
	pl.externalVerdict = filterVerdict(pl.pp.ExternalVerdict)
	return pl
}

// filterVerdict is what no-endpoint-services does with a verdict.
func filterVerdict(v proxier.Verdict) string {
	switch v {
	case proxier.Reject:
		return "goto " + chainReject
	case proxier.Drop:
		return "drop"
	}
	return ""
}

// writePort writes one service port: its chains, then its elements in
// the shared sets and maps.
func (r *renderer) writePort(p *proxier.Port) {
	pl := r.planPort(p)
	if pl.pp.NoLocalInternal {
		r.cur.noLocalInternal++
	}
	if pl.pp.NoLocalExternal {
		r.cur.noLocalExternal++
	}
	r.writePortChains(p, &pl)
	r.writeHairpins(p, &pl)
	port := strconv.Itoa(int(p.Port))
	if p.ClusterIP.IsValid() {
		r.element(&knftables.Element{Set: setClusterIPs, Key: []string{p.ClusterIP.String()}})
		if pl.pp.InternalVerdict == proxier.Forward {
			r.dispatch(&pl, mapServiceIPs, p.ClusterIP, port, "goto "+pl.internalChain)
		} else {
			r.noEndpoint(&pl, p.ClusterIP, port, pl.internalVerdict)
		}
	}
	for _, ip := range p.ExternalIPs {
		r.writeExternalDest(&pl, ip, port)
	}
	for _, ip := range p.LoadBalancerIPs {
		r.writeExternalDest(&pl, ip, port)
		if pl.usesFirewall {
			r.dispatch(&pl, mapFirewallIPs, ip, port, "goto "+pl.c.firewall)
		}
	}
	if p.NodePort != 0 {
		np := strconv.Itoa(int(p.NodePort))
		if pl.hasEndpoints {
			r.element(&knftables.Element{Map: mapServiceNodePorts, Key: []string{pl.c.protocol, np}, Value: []string{"goto " + pl.c.external}})
		}
		if pl.pp.ExternalVerdict != proxier.Forward {
			r.element(&knftables.Element{Map: mapNoEndpointNodePorts, Key: []string{pl.c.protocol, np}, Value: []string{pl.externalVerdict},
				Comment: knftables.PtrTo(pl.c.comment)})
		}
	}
}

// writeExternalDest writes an externalIP or load balancer IP: to the
// external chain while the Service has endpoints, and a reject or drop
// for what that chain does not forward.
func (r *renderer) writeExternalDest(pl *portPlan, ip netip.Addr, port string) {
	if pl.hasEndpoints {
		r.dispatch(pl, mapServiceIPs, ip, port, "goto "+pl.c.external)
	}
	if pl.pp.ExternalVerdict != proxier.Forward {
		r.noEndpoint(pl, ip, port, pl.externalVerdict)
	}
}

// dispatch adds "ip . proto . port : verdict" to a verdict map.
func (r *renderer) dispatch(pl *portPlan, m string, ip netip.Addr, port, verdict string) {
	r.element(&knftables.Element{Map: m, Key: []string{ip.String(), pl.c.protocol, port}, Value: []string{verdict}})
}

// noEndpoint adds a destination without usable endpoints to
// no-endpoint-services, commented with the port's name.
func (r *renderer) noEndpoint(pl *portPlan, ip netip.Addr, port, verdict string) {
	r.element(&knftables.Element{Map: mapNoEndpointServices, Key: []string{ip.String(), pl.c.protocol, port}, Value: []string{verdict},
		Comment: knftables.PtrTo(pl.c.comment)})
}
